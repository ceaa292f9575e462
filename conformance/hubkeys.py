"""The hub's conformance key: certificates are signed through the hub's :class:`gateway.keys.KeyStore`.

The key purpose ``conformance`` is published forever (retention ``None``): a certificate must stay checkable for
as long as it is valid, and after. The suite opens the key store on the hub's database (``QALA_DATABASE_URL``,
with ``QALA_SECRET_KEY`` to unseal the private key), exactly as the hub does.

    async with hub_signer(Settings()) as signer:
        token = issue_certificate(report, signer)
        jwks = signer.jwks                          # the conformance keys of the hub's /oauth/jwks
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from joserfc.jwk import ECKey
from sqlalchemy.exc import SQLAlchemyError

from conformance.errors import SigningError
from gateway.db import make_engine
from gateway.keys import KeyPurpose, KeyStore, register_purpose
from gateway.migrate import upgrade
from gateway.settings import Settings

PURPOSE = "conformance"
CONFORMANCE_PURPOSE = KeyPurpose(PURPOSE, lambda settings: None)
register_purpose(CONFORMANCE_PURPOSE)


@dataclass(frozen=True)
class HubSigner:
    """The hub's current conformance key, with the hub's issuer URL and the published conformance keys."""

    issuer: str
    kid: str
    key: ECKey
    jwks: dict[str, list[dict[str, Any]]]


@contextlib.asynccontextmanager
async def hub_signer(settings: Settings) -> AsyncIterator[HubSigner]:
    """Open the hub's key store and yield its conformance signer (creating the key on first use)."""
    engine = make_engine(settings.database_url)
    try:
        try:
            await upgrade(engine)  # the hub's own migrations: `qala serve` later finds the schema it expects
            store = KeyStore(engine, settings)
            await store.ensure_all()
            key = store.signer(PURPOSE)
        except (SQLAlchemyError, OSError, LookupError, ValueError, InvalidTag) as exc:
            raise SigningError(f"cannot open the hub's conformance key at {settings.database_url}: {exc}") from exc
        published = [jwk for jwk in store.jwks()["keys"] if jwk["kid"] in {k.kid for k in store.published(PURPOSE)}]
        yield HubSigner(settings.issuer, key.kid, key.key, {"keys": published})
    finally:
        await engine.dispose()
