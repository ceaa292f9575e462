"""The hub's store seen through the catalogue's narrow read interface (:class:`catalogue.source.EntitySource`).

source = StoreSource(engine)
for summary in await source.summaries(): ...          # one per (collection, city) with live entities
async for entity in source.entities("facilities", "astana"): ...
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue.source import CollectionSummary, JsonObject
from gateway.clients import members as member_directory
from gateway.store.tables import entities, entity_sequence

LATENCY_SAMPLE = 1000
"""Median data latency is taken over the most recent changes of each pair, not the whole history."""
PAGE = 1000


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class StoreSource:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def version(self) -> int:
        """The change feed's head: it moves on every write, in any worker (one indexed row to read)."""
        async with self.engine.connect() as conn:
            value = (await conn.execute(sa.select(entity_sequence.c.value))).scalar_one_or_none()
        return int(value or 0)

    async def summaries(self) -> list[CollectionSummary]:
        live = entities.c.deleted.is_(False)
        pairs = (
            sa.select(
                entities.c.collection,
                entities.c.city,
                sa.func.count(),
                sa.func.max(entities.c.received_at),
                sa.func.max(entities.c.date_modified),
                sa.func.min(entities.c.date_modified),
            )
            .where(live)
            .group_by(entities.c.collection, entities.c.city)
            .order_by(entities.c.collection, entities.c.city)
        )
        source_value = entities.c.payload["source"].as_string()
        out = []
        async with self.engine.connect() as conn:
            for collection, city, count, received, modified, first in (await conn.execute(pairs)).all():
                where = (entities.c.collection == collection, entities.c.city == city, live)
                recent = await conn.execute(
                    sa.select(entities.c.received_at - entities.c.date_modified)
                    .where(*where, entities.c.date_modified.is_not(None))
                    .order_by(entities.c.seq.desc())
                    .limit(LATENCY_SAMPLE)
                )
                latencies = [float(value) for (value,) in recent.all()]
                # Lineage names the member organisations; tokens carry their BIN, the directory their name.
                members = await conn.execute(
                    sa.select(sa.func.coalesce(member_directory.c.name, entities.c.member))
                    .select_from(entities.outerjoin(member_directory, member_directory.c.bin == entities.c.member))
                    .where(*where)
                    .distinct()
                )
                sources = await conn.execute(
                    sa.select(source_value).where(*where, source_value.is_not(None)).distinct()
                )
                out.append(
                    CollectionSummary(
                        collection=collection,
                        city=city,
                        count=int(count),
                        last_received=_moment(received),
                        last_modified=_moment(modified),
                        first_modified=_moment(first),
                        median_latency_seconds=statistics.median(latencies) if latencies else None,
                        publishers=tuple(sorted(m for (m,) in members.all() if m)),
                        sources=tuple(sorted(s for (s,) in sources.all() if s)),
                    )
                )
        return out

    async def entities(self, collection: str, city: str, *, limit: int | None = None) -> AsyncIterator[JsonObject]:
        after = ""
        sent = 0
        while limit is None or sent < limit:
            size = PAGE if limit is None else min(PAGE, limit - sent)
            stmt = (
                sa.select(entities.c.id, entities.c.payload)
                .where(
                    entities.c.collection == collection,
                    entities.c.city == city,
                    entities.c.deleted.is_(False),
                    entities.c.id > after,
                )
                .order_by(entities.c.id)
                .limit(size)
            )
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            for entity_id, payload in rows:
                yield payload
                after = entity_id
            sent += len(rows)
            if len(rows) < size:
                return
