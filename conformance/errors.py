"""The conformance suite's exceptions.

Exception tree::

    ConformanceError                  anything the suite reports as one line and a non-zero exit
    ├── ConfigurationError            bad options: unknown profile, unreadable fixture, unusable state dir
    ├── CatalogueError                the requirement catalogue is malformed or a test names an unknown requirement
    ├── IssuerError                   the suite's token issuer cannot start (port taken, key unreadable)
    ├── SigningError                  the hub's conformance key cannot be opened or used
    └── CertificateError              a certificate does not verify
        ├── CertificateMalformed      not a compact JWS, or its claims are not a certificate
        ├── CertificateSignatureInvalid   no published key verifies it (changed byte, another key)
        └── CertificateExpired        past its ``exp`` (or issued in the future)

Checks themselves never raise these: they raise the outcome signals of :mod:`conformance.outcomes`.

    >>> raise ConfigurationError("unknown profile 'roads'")
    Traceback (most recent call last):
    ...
    conformance.errors.ConfigurationError: unknown profile 'roads'
"""

from __future__ import annotations


class ConformanceError(Exception):
    """Base of the suite's own errors."""


class ConfigurationError(ConformanceError):
    pass


class CatalogueError(ConformanceError):
    pass


class IssuerError(ConformanceError):
    pass


class SigningError(ConformanceError):
    pass


class CertificateError(ConformanceError):
    pass


class CertificateMalformed(CertificateError):
    pass


class CertificateSignatureInvalid(CertificateError):
    pass


class CertificateExpired(CertificateError):
    pass
