"""The hub's signing keys: generation, rotation with overlap, the public JWKS, encryption at rest.

Keys live in the database so every worker signs and verifies with the same set. Each key has a *purpose*
("access-token", "audit-checkpoint", ...); adding one is a single :func:`register_purpose` call. Rotation follows
RFC 7517 practice: a new key is published ``key_publish_lead`` seconds *before* it starts signing (resource
servers that cache the JWKS see it first), and the key it replaces stays published until every token it signed
has expired (``retention`` after it stopped signing).

    store = KeyStore(engine, settings)
    await store.ensure_all()                  # first key of every purpose, once
    key = store.signer("access-token")        # the key to sign with now
    store.jwks()                              # {"keys": [...]} for /oauth/jwks
    await store.rotate("access-token")        # published now, signs after the lead time
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import locking
from gateway.db import JsonColumn, metadata
from gateway.settings import Settings

MISSING_KID_MEMORY = 5.0  # seconds an unknown kid is not looked up again
SIGNING_ALG = "ES256"
"""The one algorithm the hub signs with; verifiers pin it, so ``none`` and HS* confusion cannot get in."""

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(64), nullable=False, index=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("public_jwk", JsonColumn, nullable=False),
    sa.Column("sealed_private_jwk", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("activates_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class KeyPurpose:
    """What a key signs and how long its public half stays published after it stops signing.

    ``retention`` returns seconds, or ``None`` to publish forever (signatures meant to be checked for years).
    """

    name: str
    retention: Callable[[Settings], float | None]


PURPOSES: dict[str, KeyPurpose] = {}


def register_purpose(purpose: KeyPurpose) -> None:
    """Make the key store create, rotate and publish keys for ``purpose``.

    >>> register_purpose(KeyPurpose("access-token", lambda s: s.access_token_ttl + s.clock_leeway))
    """
    PURPOSES[purpose.name] = purpose


register_purpose(KeyPurpose("access-token", lambda s: s.access_token_ttl + s.clock_leeway))
register_purpose(KeyPurpose("audit-checkpoint", lambda s: None))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    purpose: str
    alg: str
    key: ECKey
    activates_at: float
    retires_at: float | None  # when its successor starts signing

    @property
    def public_jwk(self) -> dict[str, object]:
        jwk = dict(self.key.as_dict(private=False))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def describe(self, now: float) -> dict[str, object]:
        state = "active"
        if now < self.activates_at:
            state = "pending"
        elif self.retires_at is not None and now >= self.retires_at:
            state = "retired"
        return {
            "kid": self.kid,
            "purpose": self.purpose,
            "alg": self.alg,
            "activatesAt": self.activates_at,
            "retiresAt": self.retires_at,
            "state": state,
        }


class KeySealer:
    """AES-GCM encryption of private keys at rest, keyed from the server secret (so a DB dump alone is useless)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hmac.new(secret, b"qala signing-key encryption", hashlib.sha256).digest())

    def seal(self, kid: str, private_jwk: dict[str, object]) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(private_jwk).encode(), kid.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, kid: str, sealed: str) -> dict[str, object]:
        raw = base64.urlsafe_b64decode(sealed)
        data: dict[str, object] = json.loads(self._aead.decrypt(raw[:12], raw[12:], kid.encode()))
        return data


class KeyStore:
    """An in-memory view of ``signing_keys``, reloaded every ``key_refresh_seconds`` (and on an unknown ``kid``)."""

    def __init__(self, engine: AsyncEngine, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self._sealer = KeySealer(settings.secret)
        self._keys: list[SigningKey] = []
        self._loaded_at = -1.0
        self._missing: dict[str, float] = {}

    async def ensure_all(self) -> None:
        """Create the first key of every registered purpose that has none."""
        await locking.ensure_lock(self.engine, "signing-keys")
        for purpose in PURPOSES:
            await self._create(purpose, lead=0.0, only_if_missing=True)
        await self.load()

    async def rotate(self, purpose: str, lead: float | None = None) -> SigningKey:
        """Add a new key for ``purpose`` that starts signing ``lead`` seconds from now (default: the setting)."""
        if purpose not in PURPOSES:
            raise KeyError(f"unknown key purpose {purpose!r}; known: {', '.join(sorted(PURPOSES))}")
        kid = await self._create(purpose, lead=self.settings.key_publish_lead if lead is None else lead)
        await self.load()
        return next(key for key in self._keys if key.kid == kid)

    async def _create(self, purpose: str, *, lead: float, only_if_missing: bool = False) -> str:
        key = ECKey.generate_key("P-256")
        kid = key.thumbprint()
        now = self.clock()
        async with self.engine.begin() as conn:
            await locking.acquire(conn, "signing-keys")  # two workers starting together create one key, not two
            if only_if_missing:
                existing = await conn.execute(sa.select(signing_keys.c.kid).where(signing_keys.c.purpose == purpose))
                if existing.first() is not None:
                    return ""
            await conn.execute(
                signing_keys.insert().values(
                    kid=kid,
                    purpose=purpose,
                    alg=SIGNING_ALG,
                    public_jwk=dict(key.as_dict(private=False)),
                    sealed_private_jwk=self._sealer.seal(kid, dict(key.as_dict(private=True))),
                    created_at=now,
                    activates_at=now + lead,
                )
            )
        return kid

    async def load(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(signing_keys).order_by(signing_keys.c.activates_at))).all()
        keys: list[SigningKey] = []
        for purpose in PURPOSES:
            mine = [row for row in rows if row.purpose == purpose]
            for index, row in enumerate(mine):
                retires_at = mine[index + 1].activates_at if index + 1 < len(mine) else None
                private = ECKey.import_key(self._sealer.unseal(row.kid, row.sealed_private_jwk))  # type: ignore[arg-type]
                keys.append(SigningKey(row.kid, row.purpose, row.alg, private, row.activates_at, retires_at))
        self._keys = keys
        self._loaded_at = time.monotonic()

    async def refresh_if_stale(self, force: bool = False) -> None:
        """Reload when older than the refresh interval; ``force`` still waits a second between reloads."""
        age = time.monotonic() - self._loaded_at
        if age > self.settings.key_refresh_seconds or (force and age > 1.0):
            await self.load()

    async def refresh_for(self, kid: str) -> None:
        """Reload at once if ``kid`` exists in the database but not here (another worker rotated or started).

        One primary-key lookup per unknown ``kid``; kids found missing are remembered for a few seconds so a
        stream of forged kids cannot turn into a stream of reloads.
        """
        now = time.monotonic()
        if any(key.kid == kid for key in self._keys) or now - self._missing.get(kid, -1e9) < MISSING_KID_MEMORY:
            return
        async with self.engine.connect() as conn:
            found = (await conn.execute(sa.select(signing_keys.c.kid).where(signing_keys.c.kid == kid))).first()
        if found is None:
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing[kid] = now
            return
        await self.load()

    def signer(self, purpose: str, now: float | None = None) -> SigningKey:
        """The key of ``purpose`` that signs at ``now``: the newest one already active."""
        now = self.clock() if now is None else now
        active = [key for key in self._keys if key.purpose == purpose and key.activates_at <= now]
        if not active:
            raise LookupError(f"no active signing key for {purpose!r}")
        return active[-1]

    def published(self, purpose: str | None = None, now: float | None = None) -> list[SigningKey]:
        """Keys whose public half is in the JWKS: pending, active, and retired ones still inside retention."""
        now = self.clock() if now is None else now
        shown = []
        for key in self._keys:
            if purpose is not None and key.purpose != purpose:
                continue
            retention = PURPOSES[key.purpose].retention(self.settings)
            if key.retires_at is None or retention is None or now < key.retires_at + retention:
                shown.append(key)
        return shown

    def all_keys(self, purpose: str | None = None) -> list[SigningKey]:
        """Every key ever created (for checking old signatures, e.g. audit checkpoints)."""
        return [key for key in self._keys if purpose is None or key.purpose == purpose]

    def jwks(self, now: float | None = None) -> dict[str, list[dict[str, object]]]:
        return {"keys": [key.public_jwk for key in self.published(now=now)]}

    def verification_set(self, purpose: str, now: float | None = None) -> KeySet:
        """Public keys that may verify a signature of ``purpose`` now."""
        return KeySet([ECKey.import_key(key.public_jwk) for key in self.published(purpose, now)])  # type: ignore[arg-type]
