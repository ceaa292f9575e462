"""Revoked access tokens, one by one (RFC 7009, by ``jti``) or all of a client's at once, shared by every worker.

One token: its ``jti`` goes into ``revoked_tokens`` until the token would have expired anyway. All of a client's
tokens: the client's *token epoch* goes up (``clients.token_epoch``; disabling a client or rotating its secret
does the same), and every token carries the epoch it was issued in (claim ``client_epoch``), so tokens from an
earlier epoch are refused. An epoch rather than an issue time: workers' clocks may differ by more than the gap
between a revocation and the next token, and an epoch compares exactly whatever the clocks say.

**The bound.** Each worker keeps both lists in memory and reloads them before verifying a token once they are
``revocation_poll_seconds`` old (default 2 s). So a revocation committed at time *t* holds on the worker that
made it at once, and on every worker for every request that starts after *t* + ``revocation_poll_seconds``.

    revocations = RevocationList(engine, poll_seconds=2.0)
    await revocations.revoke(jti="...", client_id="qc_...", expires_at=1767225600)
    revocations.is_revoked("...")          # True
    revocations.is_cut("qc_...", epoch=0)  # True once the client's epoch is above 0
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clients import clients
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
    def __init__(
        self,
        engine: AsyncEngine,
        poll_seconds: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.monotonic = monotonic
        self._revoked: set[str] = set()
        self._local: dict[str, float] = {}  # revoked here: survives a reload that raced with our insert
        self._epochs: dict[str, int] = {}
        self._loaded_at = -1e9
        self._pruned_at = -1e9
        self._loading: tuple[float, asyncio.Future[None]] | None = None
        """The load requests share (:meth:`refresh_if_stale`), and when it began."""

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

    def is_cut(self, client_id: str, epoch: int) -> bool:
        """Whether a token of ``client_id`` issued in ``epoch`` was revoked with all of the client's tokens."""
        return epoch < self._epochs.get(client_id, 0)

    async def refresh_if_stale(self) -> None:
        """Reload the lists once they are ``poll_seconds`` old; requests that find them stale together share one load.

        Each request that found them stale used to load them itself: with 16 requests in flight every reload ran
        16 times over (``bench/http_load.py``). A request joins a load that began no more than ``poll_seconds``
        before it, which sees every revocation committed before that (the bound above); otherwise it starts one."""
        now = self.monotonic()
        if now - self._loaded_at < self.poll_seconds:
            return
        loading = self._loading
        if loading is None or loading[0] < now - self.poll_seconds:
            task = asyncio.ensure_future(self.load())
            loading = self._loading = (now, task)
            task.add_done_callback(self._loaded)
        await asyncio.shield(loading[1])  # a request that goes away leaves the load to the others

    def _loaded(self, task: asyncio.Future[None]) -> None:
        if self._loading is not None and self._loading[1] is task:
            self._loading = None
        if not task.cancelled():
            task.exception()  # the requests that awaited the load raised its error; asyncio need not log it again

    async def load(self) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            if now - self._pruned_at > 600:
                # Pruning here keeps the table the size of the live revocations, with no separate job to run.
                await conn.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < now - 3600))
                self._pruned_at = now
            rows = await conn.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.expires_at >= now - 60))
            self._revoked = {row.jti for row in rows}
            cut = await conn.execute(
                sa.select(clients.c.client_id, clients.c.token_epoch).where(clients.c.token_epoch > 0)
            )
            self._epochs = {row.client_id: int(row.token_epoch) for row in cut}
        self._local = {jti: expires for jti, expires in self._local.items() if expires >= now - 60}
        self._loaded_at = self.monotonic()
