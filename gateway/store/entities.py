"""The exchange store: canonical entities with hub metadata, on SQLite or PostgreSQL.

Every write runs in one transaction that first takes the entity-sequence lock, so writes are serialised, the
change feed is gap-free in commit order, and the audit record of the exchange commits with the data it
describes (or not at all).

    store = EntityStore(engine, audit)
    await store.ensure()
    stored, outcome = (await store.write_many([(entity, schema)], publisher, audit_record))[0]
    page, last = await store.list_page("service-requests", ListQuery(city="astana", limit=100))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import AuditLog, AuditRecord
from gateway.db import writer
from gateway.errors import Conflict, NotFound, PreconditionFailed
from gateway.store.records import (
    JsonObject,
    Outcome,
    Publisher,
    StoredEntity,
    bounding_box,
    content_hash,
    posix_seconds,
)
from gateway.store.tables import SEQUENCE_ROW, entities, entity_sequence
from schemas import SchemaVersion

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


@dataclass(frozen=True)
class ListQuery:
    """Filters of a list request; ``after`` is the last id of the previous page."""

    limit: int = 100
    after: str | None = None
    city: str | None = None
    updated_since: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    equals: dict[str, str | int | float | bool] = field(default_factory=dict)


def _row_to_entity(row: Any) -> StoredEntity:
    return StoredEntity(*tuple(row))


class EntityStore:
    def __init__(self, engine: AsyncEngine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self._postgres = engine.dialect.name == "postgresql"

    async def ensure(self) -> None:
        """Create the sequence row once (racing workers are harmless)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(entity_sequence.insert().values(id=SEQUENCE_ROW, value=0))
        except IntegrityError:
            pass

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, entity_id: str) -> StoredEntity | None:
        """The live entity with that id, or None (also for a deleted one)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(*_COLUMNS).where(entities.c.id == entity_id))).first()
        if row is None or row.payload is None:
            return None
        return _row_to_entity(row)

    async def list_page(self, collection: str, query: ListQuery) -> tuple[list[StoredEntity], str | None]:
        """One page in id order, and the id to continue after (None on the last page)."""
        stmt = sa.select(*_COLUMNS).where(entities.c.collection == collection, entities.c.deleted.is_(False))
        if query.city is not None:
            stmt = stmt.where(entities.c.city == query.city)
        if query.after is not None:
            stmt = stmt.where(entities.c.id > query.after)
        if query.updated_since is not None:
            stmt = stmt.where(entities.c.date_modified >= query.updated_since)
        if query.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = query.bbox
            stmt = stmt.where(
                entities.c.min_lon <= max_lon,
                entities.c.max_lon >= min_lon,
                entities.c.min_lat <= max_lat,
                entities.c.max_lat >= min_lat,
            )
        for name, value in sorted(query.equals.items()):
            if self._postgres:  # containment uses the GIN index on the JSONB payload
                stmt = stmt.where(sa.type_coerce(entities.c.payload, JSONB).contains({name: value}))
            else:
                # json_extract yields SQL integers, reals and text, so typed values compare as JSON would.
                stmt = stmt.where(sa.func.json_extract(entities.c.payload, f"$.{name}") == value)
        stmt = stmt.order_by(entities.c.id).limit(query.limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        page = [_row_to_entity(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return page, (page[-1].id if more and page else None)

    async def changes(self, since: int, collections: Sequence[str], limit: int) -> list[StoredEntity]:
        """The latest change of each entity after position ``since``, in commit order; tombstones included."""
        stmt = (
            sa.select(*_COLUMNS)
            .where(entities.c.seq > since, entities.c.collection.in_(list(collections)))
            .order_by(entities.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_row_to_entity(r) for r in (await conn.execute(stmt)).all()]

    async def head(self) -> int:
        async with self.engine.connect() as conn:
            value = (await conn.execute(sa.select(entity_sequence.c.value))).scalar_one_or_none()
        return int(value or 0)

    # -- writes ---------------------------------------------------------------------------------

    async def create(
        self, entity: JsonObject, schema: SchemaVersion, publisher: Publisher, audit: AuditRecord | None = None
    ) -> StoredEntity:
        """Insert a new entity; 409 when a live one has that id."""
        async with writer(self.engine), self.engine.begin() as conn:
            base = await self._reserve(conn, 1)
            existing = await self._current(conn, [entity["id"]])
            if entity["id"] in existing and existing[entity["id"]].payload is not None:
                raise Conflict(f"{entity['id']} exists already; use PUT to replace it")
            stored, _ = (await self._apply(conn, base, [(entity, schema)], publisher, existing))[0]
            await self._finish(conn, audit)
        return stored

    async def put(
        self,
        entity: JsonObject,
        schema: SchemaVersion,
        publisher: Publisher,
        if_match: str | None,
        audit: AuditRecord | None = None,
    ) -> tuple[StoredEntity, Outcome]:
        """Create or replace; with ``If-Match``, only when it matches the current ETag (else 412)."""
        async with writer(self.engine), self.engine.begin() as conn:
            base = await self._reserve(conn, 1)
            existing = await self._current(conn, [entity["id"]])
            current = existing.get(entity["id"])
            live = current is not None and current.payload is not None
            _check_precondition(if_match, current if live else None, entity["id"])
            stored, outcome = (await self._apply(conn, base, [(entity, schema)], publisher, existing))[0]
            await self._finish(conn, audit)
        return stored, outcome

    async def delete(
        self, entity_id: str, publisher: Publisher, if_match: str | None, audit: AuditRecord | None = None
    ) -> None:
        """Delete (leave a tombstone for the change feed); 404 when absent, 412 on a stale If-Match."""
        async with writer(self.engine), self.engine.begin() as conn:
            base = await self._reserve(conn, 1)
            current = (await self._current(conn, [entity_id])).get(entity_id)
            if current is None or current.payload is None:
                raise NotFound(f"no entity {entity_id}")
            _check_precondition(if_match, current, entity_id)
            now = time.time()
            await conn.execute(
                entities.update()
                .where(entities.c.id == entity_id)
                .values(
                    payload=None,
                    content_hash=None,
                    deleted=True,
                    version=current.version + 1,
                    seq=base + 1,
                    received_at=now,
                    client_id=publisher.client_id,
                    member=publisher.member,
                    min_lon=None,
                    min_lat=None,
                    max_lon=None,
                    max_lat=None,
                    date_modified=None,
                )
            )
            await self._finish(conn, audit)

    async def write_many(
        self, items: Sequence[tuple[JsonObject, SchemaVersion]], publisher: Publisher, audit: AuditRecord | None = None
    ) -> list[tuple[StoredEntity, Outcome]]:
        """Upsert valid entities in one transaction; the same content again is ``unchanged`` (idempotent)."""
        if not items:
            return []
        async with writer(self.engine), self.engine.begin() as conn:
            base = await self._reserve(conn, len(items))
            existing = await self._current(conn, [entity["id"] for entity, _ in items])
            results = await self._apply(conn, base, items, publisher, existing)
            await self._finish(conn, audit)
        return results

    # -- internals ------------------------------------------------------------------------------

    async def _reserve(self, conn: AsyncConnection, count: int) -> int:
        """Take the writers' lock and ``count`` sequence numbers; returns the number before the first.

        The first statement is a write, so SQLite takes its write lock at once. Numbers an unchanged entity does
        not use are simply skipped: the feed needs positions that grow in commit order, not dense ones.
        """
        result = await conn.execute(
            entity_sequence.update()
            .where(entity_sequence.c.id == SEQUENCE_ROW)
            .values(value=entity_sequence.c.value + count)
            .returning(entity_sequence.c.value)
        )
        return int(result.scalar_one()) - count

    async def _finish(self, conn: AsyncConnection, audit: AuditRecord | None) -> None:
        if audit is not None and self.audit is not None:
            await self.audit.append(audit, conn)

    async def _current(self, conn: AsyncConnection, ids: list[str]) -> dict[str, Any]:
        rows = await conn.execute(
            sa.select(
                entities.c.id, entities.c.content_hash, entities.c.version, entities.c.payload, entities.c.created_at
            ).where(entities.c.id.in_(sorted(set(ids))))
        )
        return {row.id: row for row in rows}

    async def _apply(
        self,
        conn: AsyncConnection,
        base: int,
        items: Sequence[tuple[JsonObject, SchemaVersion]],
        publisher: Publisher,
        existing: dict[str, Any],
    ) -> list[tuple[StoredEntity, Outcome]]:
        now = time.time()
        inserts: dict[str, dict[str, Any]] = {}
        updates: dict[str, dict[str, Any]] = {}
        results: list[tuple[StoredEntity, Outcome]] = []
        seq = base
        state: dict[str, tuple[str | None, int, float]] = {
            key: (row.content_hash, row.version, row.created_at) for key, row in existing.items()
        }
        for entity, schema in items:
            digest = content_hash(entity)
            previous = state.get(entity["id"])
            if previous is not None and previous[0] == digest:
                results.append(
                    (
                        _stored(entity, schema, version=previous[1], seq=0, now=now, publisher=publisher),
                        Outcome.UNCHANGED,
                    )
                )
                continue
            seq += 1
            version = previous[1] + 1 if previous else 1
            created_at = previous[2] if previous else now
            row = _row(
                entity,
                schema,
                digest=digest,
                version=version,
                seq=seq,
                now=now,
                created_at=created_at,
                publisher=publisher,
            )
            if entity["id"] in existing:
                updates[entity["id"]] = row
            else:
                inserts[entity["id"]] = row
            state[entity["id"]] = (digest, version, created_at)
            outcome = Outcome.CREATED if previous is None or previous[0] is None else Outcome.UPDATED
            results.append((_stored(entity, schema, version=version, seq=seq, now=now, publisher=publisher), outcome))
        if inserts:
            await conn.execute(entities.insert(), list(inserts.values()))
        if updates:
            await conn.execute(
                entities.update().where(entities.c.id == sa.bindparam("b_id")),
                [{**row, "b_id": key} for key, row in updates.items()],
            )
        return results


def _row(
    entity: JsonObject,
    schema: SchemaVersion,
    *,
    digest: str,
    version: int,
    seq: int,
    now: float,
    created_at: float,
    publisher: Publisher,
) -> dict[str, Any]:
    box = bounding_box(entity)
    return {
        "id": entity["id"],
        "type": entity["type"],
        "collection": schema.collection,
        "city": entity["city"],
        "payload": entity,
        "content_hash": digest,
        "version": version,
        "seq": seq,
        "deleted": False,
        "date_modified": posix_seconds(entity.get("dateModified")),
        "min_lon": box[0] if box else None,
        "min_lat": box[1] if box else None,
        "max_lon": box[2] if box else None,
        "max_lat": box[3] if box else None,
        "received_at": now,
        "created_at": created_at,
        "client_id": publisher.client_id,
        "member": publisher.member,
        "schema_version": schema.version,
    }


def _stored(
    entity: JsonObject, schema: SchemaVersion, *, version: int, seq: int, now: float, publisher: Publisher
) -> StoredEntity:
    return StoredEntity(
        entity["id"],
        entity["type"],
        schema.collection,
        entity["city"],
        entity,
        version,
        seq,
        now,
        publisher.client_id,
        publisher.member,
        schema.version,
    )


def _check_precondition(if_match: str | None, current: StoredEntity | Any | None, entity_id: str) -> None:
    if if_match is None:
        return
    if current is None:
        raise PreconditionFailed(f"If-Match given but {entity_id} does not exist")
    if if_match.strip() == "*":
        return
    etag = f'"{current.version}"'
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if etag not in candidates:
        raise PreconditionFailed(f"If-Match {if_match} does not match the current ETag {etag} of {entity_id}")
