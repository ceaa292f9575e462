"""The hub's side of the KPI engine: its change feed and its store, seen through the engine's narrow interfaces.

The engine (:mod:`cityscore`) never imports the gateway; the hub hands it a :class:`StoreFeed` and a
:class:`StoreSink`. KPIValues are validated against the registry and written through the store, in one
transaction with their audit record, so they are in the change feed and the audit log like any entity.

    async with running_engine(engine, registry, every=5.0):   # the hub's lifespan, when kpi_interval_seconds > 0
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, overload

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from cityscore.book import KpiBook
from cityscore.engine import Engine
from cityscore.formula import Change
from gateway.audit import AuditLog, AuditRecord
from gateway.store.entities import EntityStore
from gateway.store.reads import fetch
from gateway.store.records import Publisher
from schemas import SchemaRegistry
from schemas.cities import CityRegistry

ENGINE_CLIENT = "qala-cityscore"
"""The publisher the store records for KPIValues the engine writes."""
log = logging.getLogger("qala.cityscore")


class StoreFeed:
    def __init__(self, store: EntityStore, registry: SchemaRegistry) -> None:
        self.store = store

    async def changes(self, since: int, limit: int) -> Sequence[Change]:
        # The store's own read (EntityStore.changes) decodes payloads with the stdlib json module, row by row
        # through SQLAlchemy's JSON type; the engine reads the whole feed on a backfill, so it takes the text and
        # decodes it with orjson (bench/kpi.py: about a third of the backfill's time went to that decoding). The
        # statement goes to the driver as the store's hot reads do (gateway.store.reads.fetch): reading the feed of
        # 100,000 entities in pages of 1,000 cost ~0.24 s of CPU through SQLAlchemy's result, ~0.12 s this way.
        rows = await fetch(self.store.engine, FEED_SQL[self.store.engine.dialect.name], (since, limit))
        return _Page([tuple(row) for row in rows])


FEED_SQL = {
    # Every collection, so no filter on it: with `collection IN (...)` SQLite walks a collection index and sorts
    # every match for each page (a backfill of 200,000 entities took 23 minutes); by seq alone each page is a range
    # scan of the unique index.
    "sqlite": "SELECT seq, id, type, collection, city, CAST(payload AS TEXT), received_at FROM entities "
    "WHERE seq > ? ORDER BY seq LIMIT ?",
    "postgresql": "SELECT seq, id, type, collection, city, CAST(payload AS TEXT), received_at FROM entities "
    "WHERE seq > $1 ORDER BY seq LIMIT $2",
}
"""The change feed from a position, every collection, payloads as JSON text; in each dialect's parameter style."""


class _Page(Sequence[Change]):
    """A page of the feed that decodes each payload when the engine reaches it.

    The engine keeps nothing of a change it counts but the items it contributes, so one payload at a time is
    alive: a page of a thousand decoded payloads outlived the garbage collector's young generations and, promoted,
    set off full collections of the whole process (bench/kpi.py, 20,000 entities: reading the feed took a fifth
    less CPU once payloads were decoded one at a time, the collector's share falling from 20 % to 5 %). The rows
    are kept as plain tuples, not SQLAlchemy rows, for the same reason: a tuple of strings and numbers is one the
    collector stops tracking, a row is not (100,000 entities, in a process of its own: the one full collection
    of a backfill gone, 5 % less CPU)."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        if isinstance(index, slice):
            return _Page(self._rows[index])
        return _change(self._rows[index])

    def __iter__(self) -> Iterator[Change]:
        return map(_change, self._rows)


def _change(row: Any) -> Change:
    seq, id_, type_, collection, city, text, received = row
    payload = None if text is None else _loads(text)  # the JSON text (FEED_SQL casts it); null for a tombstone
    # tuple.__new__ is what Change(...) calls, through a Python-level __new__ that costs more than the tuple
    change: Change = _new(Change, (seq, id_, type_, collection, city, payload, received))
    return change


_loads = orjson.loads
_new = tuple.__new__


class StoreSink:
    def __init__(self, store: EntityStore, registry: SchemaRegistry) -> None:
        self.store = store
        self.registry = registry

    async def write(self, entities: Sequence[dict[str, Any]]) -> None:
        items = [(entity, self.registry.validate(entity)) for entity in entities]  # EntityInvalid: an engine bug
        audit = AuditRecord(
            action="kpi.computed",
            outcome="ok",
            client_id=ENGINE_CLIENT,
            resource="kpi-values",
            detail={"count": len(items), "book": str(entities[0].get("source", ""))},
        )
        await self.store.write_many(items, Publisher(ENGINE_CLIENT, None), audit)


def hub_engine(engine: AsyncEngine, registry: SchemaRegistry, book: KpiBook | None = None) -> Engine:
    """A KPI engine reading and writing the hub's store on ``engine``."""
    store = EntityStore(engine, AuditLog(engine))
    return Engine(
        book or KpiBook.load(),
        CityRegistry.load(),
        StoreFeed(store, registry),
        StoreSink(store, registry),
        collections={schema.type_name: schema.collection for schema in registry.latest()},
    )


async def _run(engine: Engine, every: float) -> None:
    while True:
        try:
            await engine.tick()
        except Exception:  # a failed tick is retried on the next; the feed position only moves forward on success
            log.exception("KPI engine tick failed")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def running_engine(db: AsyncEngine, registry: SchemaRegistry, every: float) -> AsyncIterator[Engine | None]:
    """Run the KPI engine every ``every`` seconds while the block runs (not at all when ``every`` is 0)."""
    if every <= 0:
        yield None
        return
    engine = hub_engine(db, registry)
    task = asyncio.create_task(_run(engine, every))
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
