"""Revoked access tokens (RFC 7009), shared by every worker through the database.

Workers keep the set of revoked, not-yet-expired ``jti`` values in memory and reload it every
``revocation_poll_seconds``, so a revocation made on one worker holds on all of them within that interval (and at
once on the worker that took it). Rows are dropped after the token would have expired anyway.

    revocations = RevocationList(engine, poll_seconds=2.0)
    await revocations.revoke(jti="...", client_id="qc_...", expires_at=1767225600)
    revocations.is_revoked("...")   # True
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import metadata

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("revoked_at", sa.Float, nullable=False),
)


class RevocationList:
    def __init__(self, engine: AsyncEngine, poll_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._revoked: set[str] = set()
        self._local: dict[str, float] = {}  # revoked here: survives a reload that raced with our insert
        self._loaded_at = -1e9
        self._pruned_at = -1e9

    async def revoke(self, *, jti: str, client_id: str, expires_at: float) -> None:
        now = self.clock()
        self._local[jti] = expires_at
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    revoked_tokens.insert().values(jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=now)
                )
        except IntegrityError:
            pass  # revoking twice is a no-op (RFC 7009)

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked or jti in self._local

    async def refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at >= self.poll_seconds:
            await self.load()

    async def load(self) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            if now - self._pruned_at > 600:
                # Pruning here keeps the table the size of the live revocations, with no separate job to run.
                await conn.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < now - 3600))
                self._pruned_at = now
            rows = await conn.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.expires_at >= now - 60))
            self._revoked = {row.jti for row in rows}
        self._local = {jti: expires for jti, expires in self._local.items() if expires >= now - 60}
        self._loaded_at = time.monotonic()
