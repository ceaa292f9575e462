"""Signed checkpoints of the audit chain head.

Hash chaining alone shows that records were changed *unless* the attacker recomputes every later hash. A
checkpoint is a JWS over ``{seq, hash, at, iss}`` signed with the hub's "audit-checkpoint" key; once one exists, a
rewritten chain no longer matches it, and checking it needs only the public key (published in the JWKS).

    checkpoints = Checkpoints(engine, keys, issuer="https://hub.example.kz")
    await checkpoints.take(audit)           # sign the current head (no-op when already signed)
    signed = await checkpoints.verified()   # {seq: hash} of checkpoints whose signature verifies
    report = await audit.verify(signed)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditLog
from gateway.db import metadata
from gateway.keys import KeyStore

PURPOSE = "audit-checkpoint"
logger = logging.getLogger("qala.gateway.audit")

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.Float, nullable=False),
    sa.Column("jws", sa.Text, nullable=False),
)


class CheckpointInvalid(Exception):
    """A stored checkpoint whose signature or content does not check out."""


class Checkpoints:
    def __init__(self, engine: AsyncEngine, keys: KeyStore, issuer: str) -> None:
        self.engine = engine
        self.keys = keys
        self.issuer = issuer

    async def take(self, audit: AuditLog) -> int | None:
        """Sign the current head; returns its sequence number, or ``None`` when there was nothing new to sign."""
        seq, head_hash = await audit.head()
        if seq == 0:
            return None
        key = self.keys.signer(PURPOSE)
        payload = {"iss": self.issuer, "seq": seq, "hash": head_hash, "at": int(time.time())}
        header = {"alg": key.alg, "kid": key.kid, "typ": "qala-audit-checkpoint+jws"}
        token = jws.serialize_compact(header, json.dumps(payload, sort_keys=True), key.key, algorithms=[key.alg])
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    audit_checkpoints.insert().values(seq=seq, record_hash=head_hash, signed_at=time.time(), jws=token)
                )
        except IntegrityError:
            return None  # another worker signed this head already
        return seq

    async def verified(self) -> dict[int, str]:
        """``{seq: hash}`` of every stored checkpoint; raises :class:`CheckpointInvalid` on a bad one."""
        await self.keys.load()
        key_set = KeySet([ECKey.import_key(key.public_jwk) for key in self.keys.all_keys(PURPOSE)])  # type: ignore[arg-type]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq))).all()
        signed: dict[int, str] = {}
        for row in rows:
            try:
                payload = json.loads(jws.deserialize_compact(row.jws, key_set, algorithms=["ES256"]).payload)
            except (JoseError, ValueError) as exc:
                raise CheckpointInvalid(f"checkpoint at record {row.seq} has an invalid signature") from exc
            if payload.get("seq") != row.seq or payload.get("hash") != row.record_hash:
                raise CheckpointInvalid(f"checkpoint at record {row.seq} was edited after signing")
            signed[int(row.seq)] = str(payload["hash"])
        return signed

    async def run_periodically(self, audit: AuditLog, interval: float) -> None:
        """The lifespan's background task: a checkpoint every ``interval`` seconds while the head moves."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keys.refresh_if_stale()
                await self.take(audit)
            except Exception:  # a failed checkpoint must not stop later ones; the log says why
                logger.exception("audit checkpoint failed")
