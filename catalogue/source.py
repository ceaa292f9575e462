"""The narrow read interface through which the catalogue sees the hub's store.

The catalogue never queries the exchange tables itself: the hub hands it an :class:`EntitySource`. Tests and
tools use :class:`MemorySource`, the in-memory implementation (as httpx's ``MockTransport`` stands in for the
network).

    >>> import asyncio
    >>> source = MemorySource()
    >>> source.add({"id": "urn:ngsi-ld:Facility:astana:1", "type": "Facility", "city": "astana",
    ...             "dateModified": "2025-01-01T10:00:00+05:00"}, collection="facilities", publisher="Akimat")
    >>> [s.count for s in asyncio.run(source.summaries())]
    [1]
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class CollectionSummary:
    """What the hub knows about one (collection, city) pair: enough for a live dataset's metadata."""

    collection: str
    city: str
    count: int
    """Live entities (deleted ones excluded)."""
    last_received: datetime | None
    """When the hub last accepted a change here: the dataset's measured freshness."""
    last_modified: datetime | None
    """The largest ``dateModified`` among the entities."""
    median_latency_seconds: float | None
    """Median of (received by the hub - dateModified) over recent changes: how late data arrives."""
    publishers: tuple[str, ...] = ()
    """Member organisations whose clients published here (lineage: which systems feed it)."""
    sources: tuple[str, ...] = ()
    """Distinct ``source`` values of the entities (source systems and adapters)."""
    first_modified: datetime | None = None
    """The smallest ``dateModified``: with ``last_modified``, the period the data covers."""


class EntitySource(Protocol):
    """Read access to the hub's entities, as the catalogue needs it."""

    async def summaries(self) -> list[CollectionSummary]:
        """One summary per (collection, city) holding at least one live entity."""
        ...

    def entities(self, collection: str, city: str, *, limit: int | None = None) -> AsyncIterator[JsonObject]:
        """The live entities of one pair, full payloads (personal fields included: the catalogue strips
        them), in a stable order, streamed."""
        ...

    # Optional: ``async def version(self) -> int``, a number that moves whenever an entity is written. A source
    # that has it gets its live datasets re-described as soon as data arrives, not on the refresh timer.


@dataclass
class _Stored:
    entity: JsonObject
    collection: str
    publisher: str
    received: datetime


@dataclass
class MemorySource:
    """An in-memory :class:`EntitySource` for tests and tools."""

    _items: dict[str, _Stored] = field(default_factory=dict)
    _version: int = 0

    def add(
        self, entity: JsonObject, *, collection: str, publisher: str = "", received: datetime | None = None
    ) -> None:
        self._items[entity["id"]] = _Stored(entity, collection, publisher, received or datetime.now(UTC))
        self._version += 1

    def remove(self, entity_id: str) -> None:
        self._items.pop(entity_id, None)
        self._version += 1

    async def version(self) -> int:
        """Moves on every add and remove."""
        return self._version

    async def summaries(self) -> list[CollectionSummary]:
        groups: dict[tuple[str, str], list[_Stored]] = {}
        for stored in self._items.values():
            groups.setdefault((stored.collection, stored.entity["city"]), []).append(stored)
        out = []
        for (collection, city), items in sorted(groups.items()):
            modified = [datetime.fromisoformat(i.entity["dateModified"]) for i in items]
            latencies = [(i.received - m).total_seconds() for i, m in zip(items, modified, strict=True)]
            out.append(
                CollectionSummary(
                    collection=collection,
                    city=city,
                    count=len(items),
                    last_received=max(i.received for i in items),
                    last_modified=max(modified),
                    first_modified=min(modified),
                    median_latency_seconds=statistics.median(latencies),
                    publishers=tuple(sorted({i.publisher for i in items if i.publisher})),
                    sources=tuple(sorted({str(i.entity["source"]) for i in items if i.entity.get("source")})),
                )
            )
        return out

    async def entities(self, collection: str, city: str, *, limit: int | None = None) -> AsyncIterator[JsonObject]:
        matching = sorted(
            (s for s in self._items.values() if s.collection == collection and s.entity["city"] == city),
            key=lambda s: s.entity["id"],
        )
        for stored in matching[:limit]:
            yield stored.entity
