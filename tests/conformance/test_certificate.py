"""Certificates signed through the hub's key store: accepted as issued, rejected after any change."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, KeySet

from conformance.certificate import CERT_TYPE, issue_certificate, verify_certificate
from conformance.errors import (
    CertificateExpired,
    CertificateMalformed,
    CertificateSignatureInvalid,
    ConfigurationError,
)
from conformance.hubkeys import HubSigner, hub_signer
from conformance.results import ModuleInfo, Result, RunReport, Status
from gateway.settings import Settings

NOW = 1_900_000_000


def report(status: Status = Status.PASS) -> RunReport:
    module = ModuleInfo("http://module", "311 module", "Vendor LLP", "2.4.1", "ab" * 32)
    result = Result("QM-AUTH-002/expired-token", "QM-AUTH-002", "expired", "MUST", status)
    return RunReport("r1", "service-requests", "1.0.0", "1.0.0", module, "2030-01-01T00:00:00Z", "seeded", [result])


@pytest.fixture
async def signer(tmp_path: Path) -> HubSigner:
    settings = Settings(env="demo", database_url=f"sqlite:///{tmp_path / 'hub.db'}", issuer="https://hub.example.kz")
    async with hub_signer(settings) as opened:
        return opened


def keys(signer: HubSigner) -> KeySet:
    return KeySet.import_key_set(signer.jwks)  # type: ignore[arg-type]


async def test_issued_certificate_verifies_and_binds_the_module(signer: HubSigner) -> None:
    token = issue_certificate(report(), signer, now=NOW)
    certificate = verify_certificate(token, keys(signer), now=NOW + 10)
    assert certificate.header == {"alg": "ES256", "typ": CERT_TYPE, "kid": signer.kid}
    claims = certificate.claims
    assert claims["iss"] == "https://hub.example.kz"
    assert claims["profile"] == "service-requests"
    assert claims["module"] == {
        "name": "311 module",
        "vendor": "Vendor LLP",
        "version": "2.4.1",
        "openapiSha256": "ab" * 32,
    }
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600


async def test_the_hub_publishes_the_conformance_key_forever(tmp_path: Path) -> None:
    settings = Settings(env="demo", database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    async with hub_signer(settings) as first, hub_signer(settings) as second:
        assert first.kid == second.kid  # the same key on every run, from the hub's database
        assert [key["kid"] for key in first.jwks["keys"]] == [first.kid]


def _flip(token: str, index: int) -> str:
    changed = "A" if token[index] != "A" else "B"
    return token[:index] + changed + token[index + 1 :]


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
async def test_any_changed_byte_is_rejected(signer: HubSigner, where: str) -> None:
    token = issue_certificate(report(), signer, now=NOW)
    header_end, payload_end = token.index("."), token.rindex(".")
    index = {"header": header_end // 2, "payload": (header_end + payload_end) // 2, "signature": payload_end + 5}
    with pytest.raises((CertificateSignatureInvalid, CertificateMalformed)):
        verify_certificate(_flip(token, index[where]), keys(signer), now=NOW)


async def test_changed_claim_with_valid_encoding_is_rejected(signer: HubSigner) -> None:
    header, payload, signature = issue_certificate(report(), signer, now=NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["module"]["version"] = "9.9.9"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(CertificateSignatureInvalid):
        verify_certificate(f"{header}.{forged}.{signature}", keys(signer), now=NOW)


async def test_another_key_is_rejected(signer: HubSigner) -> None:
    impostor = HubSigner(signer.issuer, signer.kid, ECKey.generate_key("P-256"), signer.jwks)
    with pytest.raises(CertificateSignatureInvalid):
        verify_certificate(issue_certificate(report(), impostor, now=NOW), keys(signer), now=NOW)


async def test_expired_and_wrong_type_are_rejected(signer: HubSigner) -> None:
    token = issue_certificate(report(), signer, now=NOW)
    with pytest.raises(CertificateExpired):
        verify_certificate(token, keys(signer), now=NOW + 366 * 24 * 3600)
    other_type = jws.serialize_compact(
        {"alg": "ES256", "typ": "JWT", "kid": signer.kid}, token.split(".")[1], signer.key, algorithms=["ES256"]
    )
    with pytest.raises(CertificateMalformed, match="typ"):
        verify_certificate(other_type, keys(signer), now=NOW)


async def test_no_certificate_for_a_failed_run(signer: HubSigner) -> None:
    with pytest.raises(ConfigurationError, match="not-certified"):
        issue_certificate(report(Status.FAIL), signer)
