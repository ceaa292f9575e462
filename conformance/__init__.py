"""Qala conformance: the suite vendors run against their module to certify it against the open-API mandate.

    qala conformance requirements --profile service-requests
    qala conformance run --profile service-requests --base-url http://127.0.0.1:9000 --report-dir report
    qala conformance verify report/certificate.jws --jwks report/hub-jwks.json

The suite acts as the token issuer the module trusts, runs every registered test of the profile, keeps each
HTTP exchange as (redacted) evidence, writes ``report.json``, ``junit.xml`` and ``report.html``, and, when no MUST
requirement failed, a certificate signed with the hub's conformance key.
"""

SUITE_VERSION = "1.1.0"
"""Version of the suite (tests and catalogue); recorded in every report and certificate."""

__all__ = ["SUITE_VERSION"]
