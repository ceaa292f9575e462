"""Certificates: a compact JWS, signed with the hub's conformance key, that a city verifies offline.

The certificate binds the verdict to the artefact: profile, mandate and suite versions, the module's name,
vendor and version, and the SHA-256 of the OpenAPI document the module served during the run.

    token = issue_certificate(report, signer)                     # signer: the hub's conformance key
    certificate = verify_certificate(token, load_jwks("hub-jwks.json"))
    certificate.claims["module"]["name"]

Verification pins ES256 and the ``qala-cert+jwt`` type, finds the key by ``kid`` in the given JWKS, and checks
``iat``/``exp``: any changed byte, another key or an expired certificate is refused with a typed error.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from conformance.errors import (
    CertificateExpired,
    CertificateMalformed,
    CertificateSignatureInvalid,
    ConfigurationError,
)
from conformance.results import RunReport

CERT_TYPE = "qala-cert+jwt"
ALG = "ES256"
VALIDITY_SECONDS = 365 * 24 * 3600
LEEWAY = 60
REQUIRED_CLAIMS = ("iss", "iat", "exp", "jti", "profile", "mandateVersion", "suiteVersion", "module", "results")


class CertificateSigner(Protocol):
    """The key a certificate is signed with (the hub's conformance key, see :mod:`conformance.hubkeys`)."""

    @property
    def issuer(self) -> str: ...

    @property
    def kid(self) -> str: ...

    @property
    def key(self) -> ECKey: ...


@dataclass(frozen=True)
class Certificate:
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def summary(self) -> str:
        module = self.claims["module"]
        return (
            f"{module.get('name')} {module.get('version')} by {module.get('vendor')}: "
            f"profile {self.claims['profile']}, "
            f"mandate {self.claims['mandateVersion']}, suite {self.claims['suiteVersion']}"
        )


def certificate_claims(report: RunReport, issuer: str, now: float, validity: int = VALIDITY_SECONDS) -> dict[str, Any]:
    summary = report.summary()
    return {
        "iss": issuer,
        "sub": f"{report.module.vendor}/{report.module.name}@{report.module.version}",
        "iat": int(now),
        "exp": int(now) + validity,
        "jti": secrets.token_urlsafe(16),
        "profile": report.profile,
        "mandateVersion": report.mandate_version,
        "suiteVersion": report.suite_version,
        "module": {
            "name": report.module.name,
            "vendor": report.module.vendor,
            "version": report.module.version,
            "openapiSha256": report.module.openapi_sha256,
        },
        "results": {key: summary[key] for key in ("total", "pass", "fail", "skip", "omit", "error")}
        | {"shouldFailed": summary["shouldFailed"], "runId": report.run_id},
    }


def issue_certificate(report: RunReport, signer: CertificateSigner, now: float | None = None) -> str:
    """A compact JWS for a certified ``report``; refuses a report that is not certified."""
    if not report.certified:
        raise ConfigurationError(f"no certificate for a run whose verdict is {report.verdict}")
    claims = certificate_claims(report, signer.issuer, time.time() if now is None else now)
    header = {"alg": ALG, "typ": CERT_TYPE, "kid": signer.kid}
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True)
    return jws.serialize_compact(header, payload, signer.key, algorithms=[ALG])


def verify_certificate(token: str, keys: KeySet, now: float | None = None) -> Certificate:
    """Verify ``token`` against ``keys`` (a JWKS); raises a :class:`~conformance.errors.CertificateError`."""
    token = token.strip()
    if token.count(".") != 2:
        raise CertificateMalformed("not a compact JWS (three dot-separated parts)")
    try:
        compact = jws.deserialize_compact(token, keys, algorithms=[ALG])
    except JoseError as exc:
        raise CertificateSignatureInvalid(
            f"the signature does not verify with any published conformance key ({exc.error})"
        ) from exc
    except ValueError as exc:
        raise CertificateMalformed(f"not a compact JWS: {exc}") from exc
    header = dict(compact.headers())
    if header.get("typ") != CERT_TYPE:
        raise CertificateMalformed(f"typ is {header.get('typ')!r}, not {CERT_TYPE!r}")
    try:
        claims = json.loads(compact.payload)
    except ValueError as exc:
        raise CertificateMalformed("the payload is not JSON") from exc
    if not isinstance(claims, dict) or any(name not in claims for name in REQUIRED_CLAIMS):
        raise CertificateMalformed(f"the payload lacks the claims of a certificate ({', '.join(REQUIRED_CLAIMS)})")
    moment = time.time() if now is None else now
    if not isinstance(claims["exp"], int) or moment > claims["exp"] + LEEWAY:
        raise CertificateExpired(f"the certificate expired at {claims['exp']}")
    if not isinstance(claims["iat"], int) or claims["iat"] > moment + LEEWAY:
        raise CertificateExpired("the certificate is issued in the future")
    return Certificate(header, claims)


def load_jwks(source: str, timeout: float = 10.0) -> KeySet:
    """A JWKS from a file or an ``http(s)://`` URL."""
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=timeout)
            response.raise_for_status()
            data = response.json()
        else:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        return KeySet.import_key_set(data)
    except (OSError, ValueError, httpx.HTTPError, JoseError) as exc:
        raise ConfigurationError(f"cannot load a JWKS from {source}: {exc}") from exc
