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
import bisect
import contextlib
from collections.abc import Sequence
from typing import Any

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
    collection: Any = entities.c.collection
    if engine.dialect.name == "sqlite":
        # SQLite would otherwise pick a (collection, ...) index and sort every row of the collection, a cost that
        # grows with the table instead of with the page; `collection || ''` leaves it the seq index.
        collection = collection.concat("")
    query = (
        sa.select(*_COLUMNS)
        .where(entities.c.seq > after, entities.c.seq <= upto, collection.in_(list(collections)))
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
            async with asyncio.timeout(timeout):  # not wait_for: on Python 3.11 it can drop a cancel
                await self._moved.wait()
        return self.head


class FeedCache:
    """The latest changes of every collection, held once per process for every subscription to read.

    A hundred subscriptions following the feed would otherwise each read (and parse) the same rows: here one
    reader extends the window as the head moves and the others take their pages from memory. It holds at most
    ``capacity`` changes; a subscription further behind reads the database directly. Rows stay as they were read:
    an entity changed again later appears at both positions, as two changes, in order.

        cache = FeedCache(engine)
        changes = await cache.scan(after, upto, ("service-requests",), limit=1000)
    """

    def __init__(self, engine: AsyncEngine, capacity: int = 20_000) -> None:
        self.engine = engine
        self.capacity = capacity
        self._rows: list[StoredEntity] = []
        self._seqs: list[int] = []
        self._low = -1  # the window covers low < seq <= high
        self._high = -1
        self._lock = asyncio.Lock()

    async def _extend(self, upto: int) -> None:
        async with self._lock:
            if upto <= self._high:
                return
            if self._high < 0:
                self._low = self._high = upto  # start at the head: nobody has asked for the past yet
                return
            every = await _all_collections(self.engine, self._high, upto, self.capacity + 1)
            if len(every) > self.capacity:  # too far behind to keep: restart the window at the head
                self._rows, self._seqs, self._low, self._high = [], [], upto, upto
                return
            self._rows += every
            self._seqs += [row.seq for row in every]
            self._high = upto
            extra = len(self._rows) - self.capacity
            if extra > 0:
                self._low = self._seqs[extra - 1]
                del self._rows[:extra], self._seqs[:extra]

    async def scan(self, after: int, upto: int, collections: Sequence[str], limit: int) -> list[StoredEntity]:
        """As :func:`scan`, from memory when the window covers ``after``."""
        if upto > self._high:
            await self._extend(upto)
        if not (self._low <= after and upto <= self._high):
            return await scan(self.engine, after, upto, collections, limit)
        wanted = set(collections)
        found: list[StoredEntity] = []
        for index in range(bisect.bisect_right(self._seqs, after), bisect.bisect_right(self._seqs, upto)):
            row = self._rows[index]
            if row.collection in wanted:
                found.append(row)
                if len(found) == limit:
                    break
        return found


async def _all_collections(engine: AsyncEngine, after: int, upto: int, limit: int) -> list[StoredEntity]:
    query = (
        sa.select(*_COLUMNS).where(entities.c.seq > after, entities.c.seq <= upto).order_by(entities.c.seq).limit(limit)
    )
    async with engine.connect() as conn:
        return [StoredEntity(*tuple(row)) for row in (await conn.execute(query)).all()]
