"""Checkpoints of the audit log: signed tree heads over its Merkle tree, taken periodically and kept.

A checkpoint grows the Merkle tree (:mod:`gateway.audit_tree`) to the current chain head and signs a
:class:`~gateway.treehead.SignedHead` with the hub's ``audit-checkpoint`` key. The newest head is published at
``GET /api/v1/audit/tree-head``; whoever keeps a copy (``qala audit witness``) can later prove that the log
still extends it. Heads are also stored here, so ``qala audit verify`` checks every one of them, but a head kept
only inside the database cannot survive an attacker who can write to it: keeping heads elsewhere is the point.

    checkpoints = Checkpoints(engine, keys, tree, issuer="https://hub.example.kz")
    head = await checkpoints.take(audit)     # a new SignedHead, or None when nothing new was logged
    heads = await checkpoints.verified()     # every stored head, signatures checked
    latest = await checkpoints.latest()
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import GENESIS_HASH, AuditLog, audit_log
from gateway.audit_tree import AuditTree
from gateway.db import metadata
from gateway.keys import KeyStore
from gateway.treehead import HEAD_TYPE, HeadInvalid, SignedHead

PURPOSE = "audit-checkpoint"
logger = logging.getLogger("qala.gateway.audit")

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.Float, nullable=False),
    sa.Column("jws", sa.Text, nullable=False),
    sa.Column("root_hash", sa.String(64), nullable=True),  # None: a chain-only checkpoint from before the tree
)


class CheckpointInvalid(Exception):
    """A stored checkpoint whose signature or content does not check out."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified stored checkpoint: the chain hash it signs for record ``seq``, and the tree root when it has one."""

    seq: int
    chain_hash: str
    root_hash: str | None
    head: SignedHead | None


class Checkpoints:
    def __init__(self, engine: AsyncEngine, keys: KeyStore, tree: AuditTree, issuer: str) -> None:
        self.engine = engine
        self.keys = keys
        self.tree = tree
        self.issuer = issuer

    def key_set(self) -> KeySet:
        """Every audit-checkpoint public key ever created: old heads stay checkable after a rotation."""
        return KeySet([ECKey.import_key(key.public_jwk) for key in self.keys.all_keys(PURPOSE)])  # type: ignore[arg-type]

    async def take(self, audit: AuditLog) -> SignedHead | None:
        """Grow the tree to the chain head and sign it; ``None`` when that head is signed already."""
        size, _ = await audit.head()
        if size == 0:
            return None
        await self.tree.extend(size)
        async with self.engine.connect() as conn:
            signed = (
                await conn.execute(sa.select(audit_checkpoints.c.seq).where(audit_checkpoints.c.seq == size))
            ).first()
            chain = (await conn.execute(sa.select(audit_log.c.record_hash).where(audit_log.c.seq == size))).scalar()
        if signed is not None:
            return None
        root = await self.tree.root(size)
        now = time.time()
        head = SignedHead.sign(
            self.keys.signer(PURPOSE),
            issuer=self.issuer,
            tree_size=size,
            root_hash=root.hex(),
            chain_hash=str(chain or GENESIS_HASH),
            timestamp=int(now * 1000),
        )
        values = {"seq": size, "record_hash": head.chain_hash, "root_hash": head.root_hash, "signed_at": now}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(audit_checkpoints.insert().values(**values, jws=head.signature))
        except IntegrityError:
            return None  # another worker signed this head already
        return head

    async def latest(self) -> SignedHead | None:
        """The newest stored tree head (its signature checked), or ``None`` before the first one."""
        query = (
            sa.select(audit_checkpoints)
            .where(audit_checkpoints.c.root_hash.is_not(None))
            .order_by(audit_checkpoints.c.seq.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        await self.keys.refresh_if_stale()
        return self._check(row).head

    async def verified(self) -> dict[int, Checkpoint]:
        """Every stored checkpoint by sequence number; raises :class:`CheckpointInvalid` on a bad one."""
        await self.keys.load()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq))).all()
        return {int(row.seq): self._check(row) for row in rows}

    def _check(self, row: sa.Row[object]) -> Checkpoint:
        seq, chain_hash, root_hash, token = int(row.seq), str(row.record_hash), row.root_hash, str(row.jws)
        key_set = self.key_set()
        try:
            typ = jws.extract_compact(token.encode()).protected.get("typ")
        except (JoseError, ValueError) as exc:
            raise CheckpointInvalid(f"checkpoint at record {seq} is not a JWS") from exc
        if typ == HEAD_TYPE:
            try:
                head = SignedHead.from_jws(token, key_set)
            except HeadInvalid as exc:
                raise CheckpointInvalid(f"checkpoint at record {seq}: {exc}") from exc
            if (head.tree_size, head.chain_hash, head.root_hash) != (seq, chain_hash, root_hash):
                raise CheckpointInvalid(f"checkpoint at record {seq} was edited after signing")
            return Checkpoint(seq, chain_hash, root_hash, head)
        try:  # a chain-only checkpoint signed before the Merkle tree existed
            payload = json.loads(jws.deserialize_compact(token, key_set, algorithms=["ES256"]).payload)
        except (JoseError, ValueError) as exc:
            raise CheckpointInvalid(f"checkpoint at record {seq} has an invalid signature") from exc
        if payload.get("seq") != seq or payload.get("hash") != chain_hash or root_hash is not None:
            raise CheckpointInvalid(f"checkpoint at record {seq} was edited after signing")
        return Checkpoint(seq, chain_hash, None, None)

    async def run_periodically(self, audit: AuditLog, interval: float) -> None:
        """The lifespan's background task: a signed tree head every ``interval`` seconds while the log grows."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keys.refresh_if_stale()
                await self.take(audit)
            except Exception:  # a failed checkpoint must not stop later ones; the log says why
                logger.exception("audit checkpoint failed")
