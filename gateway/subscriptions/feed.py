"""Reading the change feed for subscribers: bounded scans, and a watcher that says when the feed moved.

A scan reads the changes after a position up to a *head* read first, so "nothing more in these collections up
to the head" is a fact a subscriber can move its position past (a subscription to rare types does not rescan
the busy ones). Commits are serialised on the feed's sequence row, so no change below the head can still appear.

    watcher = HeadWatcher(engine, every=0.1)      # one per process; streams and delivery wait on it
    head = await watcher.wait_beyond(position, timeout=15)
    changes = await scan(engine, position, head, ("service-requests",), limit=1000)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.records import StoredEntity
from gateway.store.tables import entities, entity_sequence

_COLUMNS = (
    entities.c.id,
    entities.c.type,
    entities.c.collection,
    entities.c.city,
    entities.c.payload,
    entities.c.version,
    entities.c.seq,
    entities.c.received_at,
    entities.c.client_id,
    entities.c.member,
    entities.c.schema_version,
)


async def head(engine: AsyncEngine) -> int:
    """The position of the latest committed change (0 for an empty feed)."""
    async with engine.connect() as conn:
        value = (await conn.execute(sa.select(entity_sequence.c.value))).scalar_one_or_none()
    return int(value or 0)


async def scan(
    engine: AsyncEngine, after: int, upto: int, collections: Sequence[str], limit: int
) -> list[StoredEntity]:
    """Changes with ``after < seq <= upto`` in ``collections``, in commit order, at most ``limit``."""
    if upto <= after or not collections:
        return []
    query = (
        sa.select(*_COLUMNS)
        .where(entities.c.seq > after, entities.c.seq <= upto, entities.c.collection.in_(list(collections)))
        .order_by(entities.c.seq)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [StoredEntity(*tuple(row)) for row in (await conn.execute(query)).all()]


class HeadWatcher:
    """Polls the feed's head once per process and wakes every waiter when it moves.

    One cheap read every ``every`` seconds however many streams and delivery slots wait, instead of one each.
    """

    def __init__(self, engine: AsyncEngine, every: float = 0.1) -> None:
        self.engine = engine
        self.every = every
        self.head = -1
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> HeadWatcher:
        self.head = await head(self.engine)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                latest = await head(self.engine)
            except Exception:  # the database is away for a moment: keep the last head, try again
                await asyncio.sleep(1.0)
                continue
            if latest != self.head:
                self.head = latest
                self._moved.set()
                self._moved = asyncio.Event()

    async def wait_beyond(self, position: int, timeout: float) -> int:
        """The head once it is past ``position``, or after ``timeout`` seconds, whichever comes first."""
        if self.head > position:
            return self.head
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout)
        return self.head
