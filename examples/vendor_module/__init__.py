"""A reference vendor module: the service-requests profile of the Qala open-API mandate, in one small app.

It is what a vendor's module looks like when it passes the conformance suite: it trusts one token issuer (its
URL and JWKS), verifies RFC 9068 access tokens itself, validates entities against the canonical schema, and
serves keyset-paginated lists with the mandated filters.

    VENDOR_ISSUER_URL=http://127.0.0.1:8765 VENDOR_AUDIENCE=http://127.0.0.1:9000 \\
        uvicorn --factory examples.vendor_module.app:from_environment --port 9000
"""

from examples.vendor_module.app import Fault, create_app

__all__ = ["Fault", "create_app"]
