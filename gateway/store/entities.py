"""The exchange store: canonical entities with hub metadata, on SQLite or PostgreSQL.

Every write runs in one transaction that first takes the entity-sequence lock, so writes are serialised, the
change feed is gap-free in commit order, and the audit record of the exchange commits with the data it
describes (or not at all).

    store = EntityStore(engine, audit)
    await store.ensure()
    version, outcome = (await store.write_many([(entity, schema)], publisher, audit_record))[0]
    page, last = await store.list_page("service-requests", ListQuery(city="astana", limit=100))
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import (
    HEAD_ID,
    AuditLog,
    AuditRecord,
    append_bumped,
    append_in_sqlite,
    postgres_bump_head,
    sqlite_writer,
)
from gateway.db import writer
from gateway.errors import Conflict, GatewayError, NotFound, PreconditionFailed
from gateway.store.reads import (
    COLUMNS,
    GET_SQL,
    PAYLOAD_COLUMNS,
    POSTGRES_COLUMNS,
    Select,
    fetch,
    postgres_get_json_sql,
    postgres_payload_columns,
    sqlite_get_json_sql,
    sqlite_json_columns,
)
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
from gateway.store.writer import as_arrays, postgres_writer, unnest_parameters
from schemas import SchemaVersion

GROUP_LIMIT = 500
"""At most this many single writes share one transaction."""

_PAYLOAD_TEXT = sa.cast(entities.c.payload, sa.Text)
"""The payload as the JSON text the database holds, for orjson to parse: the JSON column type would parse it with
the standard library's decoder, which cost more than the rest of a list page together."""

_COLUMNS = (
    entities.c.id,
    entities.c.type,
    entities.c.collection,
    entities.c.city,
    _PAYLOAD_TEXT.label("payload"),
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
    cities: tuple[str, ...] | None = None
    """Only entities of these cities (a client narrowed with ``--read-city``); None: every city."""


def is_orjson_text(text: bytes) -> bool:
    """Whether a stored payload (or its first :data:`~gateway.store.reads.HEAD_CHARS` characters) is orjson's text,
    which has no space after the first member's colon, rather than the standard library's (``{"id": "urn:..."``),
    which SQLAlchemy wrote before the store used orjson. Only orjson's text is what a response would render; a first
    member name with a backslash, or beyond the head, counts as not orjson's (it is parsed, which is never wrong)."""
    if text[:6] == b'{"id":':  # the first member of nearly every payload: one comparison (this runs once a row)
        return text[6:7] not in (b" ", b"")
    end = text.find(b'"', 2)
    after = text[end + 1 : end + 3]  # orjson: the colon and the value's first character; the standard library: ": "
    plain_name = end > 0 and b"\\" not in text[2:end]
    return text.startswith(b'{"') and plain_name and after[:1] == b":" and after[1:] not in (b" ", b"")


def _orjson_text(text: bytes, head: bytes) -> bytes:
    """A payload's JSON text (``text``, members perhaps removed) as orjson renders it: as it is when the stored
    payload, whose first characters are ``head``, is orjson's (:func:`is_orjson_text`), else parsed and rendered."""
    return text if is_orjson_text(head) else orjson.dumps(orjson.loads(text))


class EntityText(NamedTuple):
    """What :meth:`EntityStore.get_json` reads of one entity."""

    collection: str
    city: str
    version: int
    text: bytes
    """The payload's JSON text as the store renders it (:meth:`EntityStore.get_json`), without the members asked to
    be removed."""

    @property
    def etag(self) -> str:
        return f'"{self.version}"'  # as StoredEntity.etag


def _row_to_entity(row: Any) -> StoredEntity:
    """A row of the store's columns as a StoredEntity; a tombstone's payload is SQL NULL or JSON ``null``."""
    key, type_name, collection, city, payload, *rest = row
    return StoredEntity(key, type_name, collection, city, None if payload is None else orjson.loads(payload), *rest)


class EntityStore:
    def __init__(self, engine: AsyncEngine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self._postgres = engine.dialect.name == "postgresql"
        self._pending: list[_Op] = []
        self._drainer: asyncio.Task[None] | None = None

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
        rows = await fetch(self.engine, GET_SQL[self.engine.dialect.name], (entity_id,))
        stored = _row_to_entity(rows[0]) if rows else None
        return stored if stored is not None and stored.payload is not None else None  # a tombstone has none

    async def get_json(self, entity_id: str, remove: frozenset[str] = frozenset()) -> EntityText | None:
        """The live entity with that id as :class:`EntityText`, without its top-level members ``remove`` (None when
        absent or deleted).

        Read and sent as the database renders it, as a list page's entities are (:meth:`list_json`): parsing the
        payload, removing the personal fields and rendering it again cost a GET of one entity about a twentieth of
        its CPU."""
        if self._postgres:
            rows = await fetch(self.engine, postgres_get_json_sql(remove), (entity_id,))
            if not rows or rows[0][4] is None:  # no live row with a payload
                return None
            collection, city, version, _, text = rows[0]
            return EntityText(collection, city, version, text)
        rows = await fetch(self.engine, sqlite_get_json_sql(remove), (entity_id,))
        if not rows or rows[0][4] is None or rows[0][4] == b"null":  # a tombstone's payload is JSON null
            return None
        collection, city, version, _, text, *head = rows[0]
        return EntityText(collection, city, version, _orjson_text(text, head[0] if head else text))

    async def payloads(self, ids: Sequence[str]) -> dict[str, JsonObject]:
        """The live payloads of ``ids``, keyed by id (absent and deleted ones left out)."""
        if not ids:
            return {}
        stmt = sa.select(entities.c.id, _PAYLOAD_TEXT).where(
            entities.c.id.in_(sorted(set(ids))), entities.c.deleted.is_(False)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {key: orjson.loads(payload) for key, payload in rows if payload is not None}

    async def list_page(self, collection: str, query: ListQuery) -> tuple[list[StoredEntity], str | None]:
        """One page in id order, and the id to continue after (None on the last page)."""
        columns = POSTGRES_COLUMNS if self._postgres else COLUMNS
        rows = await fetch(self.engine, *self._select(collection, query).page(query.limit + 1, columns))
        page = [_row_to_entity(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return page, (page[-1].id if more and page else None)

    async def list_payloads(self, collection: str, query: ListQuery) -> tuple[list[JsonObject], str | None]:
        """The payloads of :meth:`list_page`'s page, and the same id to continue after: the same rows, without the
        hub's metadata, which a page of the collections API does not show (building a :class:`StoredEntity` per
        row cost about a fifth of what parsing its payload does)."""
        columns = postgres_payload_columns(frozenset()) if self._postgres else PAYLOAD_COLUMNS
        rows = await fetch(self.engine, *self._select(collection, query).page(query.limit + 1, columns))
        page = rows[: query.limit]
        more = len(rows) > query.limit
        payloads = [orjson.loads(row[1]) for row in page if row[1] is not None]
        return payloads, (page[-1][0] if more and page else None)

    async def list_json(
        self, collection: str, query: ListQuery, remove: frozenset[str] = frozenset()
    ) -> tuple[list[bytes], str | None]:
        """:meth:`list_payloads`'s page as each payload's JSON text without its top-level members ``remove``, as
        the database renders it, and the same id to continue after.

        On SQLite the store holds each payload as the text orjson wrote, so the text is read and sent as it is
        (members removed by SQLite's ``json_remove``): parsing each payload and rendering it again cost a list page
        of 100 about half its CPU (``bench/http_load.py``). A payload written before the store used orjson
        (:func:`is_orjson_text`) is parsed and rendered as before. On PostgreSQL the text is JSONB's (members
        removed with ``-``): its members in JSONB's order, with a space after each colon and comma. Parsing and
        rendering it as orjson would cost a page of 100 a third of its CPU (py-spy under ``bench/http_load.py``)
        for the same JSON value."""
        columns = postgres_payload_columns(remove) if self._postgres else sqlite_json_columns(remove)
        rows = await fetch(self.engine, *self._select(collection, query).page(query.limit + 1, columns))
        page = [row for row in rows[: query.limit] if row[1] is not None]
        texts = [row[1] for row in page] if self._postgres else [_orjson_text(row[1], row[-1]) for row in page]
        more = len(rows) > query.limit
        return texts, (rows[query.limit - 1][0] if more else None)

    def _select(self, collection: str, query: ListQuery) -> Select:
        select = Select(self.engine.dialect.name, collection)
        if query.city is not None:
            select.where_equal("city", query.city)
        if query.cities is not None:
            select.where_in("city", query.cities)
        if query.after is not None:
            select.where("id", ">", query.after)
        if query.updated_since is not None:
            select.where("date_modified", ">=", query.updated_since)
        if query.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = query.bbox
            select.where("min_lon", "<=", max_lon)
            select.where("max_lon", ">=", min_lon)
            select.where("min_lat", "<=", max_lat)
            select.where("max_lat", ">=", min_lat)
        for name, value in sorted(query.equals.items()):
            select.where_payload_equal(name, value)
        return select

    async def changes(self, since: int, collections: Sequence[str], limit: int) -> list[StoredEntity]:
        """The latest change of each entity after position ``since``, in commit order; tombstones included."""
        # On SQLite `collection || ''` keeps the planner on the seq index: with a plain `collection IN`, it took a
        # (collection, ...) index and sorted every row of the collection for each page.
        collection = entities.c.collection.concat("") if not self._postgres else entities.c.collection
        stmt = (
            sa.select(*_COLUMNS)
            .where(entities.c.seq > since, collection.in_(list(collections)))
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
        stored, _ = await self._submit(_Op("create", entity["id"], entity, schema, publisher, None, audit))
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
        return await self._submit(_Op("put", entity["id"], entity, schema, publisher, if_match, audit))

    async def delete(
        self, entity_id: str, publisher: Publisher, if_match: str | None, audit: AuditRecord | None = None
    ) -> None:
        """Delete (leave a tombstone for the change feed); 404 when absent, 412 on a stale If-Match."""
        await self._submit(_Op("delete", entity_id, None, None, publisher, if_match, audit))

    # Single writes are group-committed: the writes that arrive while a transaction is open share the next one
    # (one lock, one look-up, one multi-row insert, one audit append), and each caller still waits for its own
    # commit and gets its own outcome or error (409, 412, 404), exactly as if it had been alone.

    async def _submit(self, op: _Op) -> tuple[StoredEntity, Outcome]:
        op.future = asyncio.get_running_loop().create_future()
        self._pending.append(op)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await op.future

    async def _drain(self) -> None:
        while self._pending:
            ops, self._pending = self._pending[:GROUP_LIMIT], self._pending[GROUP_LIMIT:]
            try:
                async with writer(self.engine):
                    outcomes = await self._commit_group(ops)
            except Exception as exc:  # the transaction failed: every write in it learns so
                for op in ops:
                    if not op.future.done():
                        op.future.set_exception(exc)
                continue
            for op, outcome in zip(ops, outcomes, strict=True):
                if op.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    op.future.set_exception(outcome)
                else:
                    op.future.set_result(outcome)

    async def _commit_group(self, ops: list[_Op]) -> list[_Result]:
        """Apply ``ops`` in one transaction and commit it; each op's outcome or error, in order.

        On SQLite the whole transaction is one call in ``aiosqlite``'s thread (:func:`_group_in_sqlite`), as the
        audit log's own group commit is: through SQLAlchemy each statement, cursor and the commit was a hand-off to
        that thread and back, about 27 per group commit, which cost a POST more than its validation. On PostgreSQL
        the transaction runs on a connection kept for it, in a thread of its own (:func:`_group_in_postgres`); any
        other driver goes through SQLAlchemy."""
        thread = await sqlite_writer(self.engine)
        if thread is not None:
            run, database = thread
            outcomes: list[_Result] = await run(_group_in_sqlite, database, ops, self.audit is not None)
            return outcomes
        kept = postgres_writer(self.engine, "store")
        if kept is not None:
            audited = self.audit is not None
            grouped: list[_Result] = await kept.run(lambda driver: _group_in_postgres(driver, ops, audited))
            return grouped
        async with self.engine.connect() as conn, conn.begin():
            return await self._apply_ops(conn, ops)

    async def _apply_ops(self, conn: AsyncConnection, ops: list[_Op]) -> list[_Result]:
        base = await self._reserve(conn, len(ops))
        existing = await self._current(conn, [op.entity_id for op in ops])
        group = _plan(ops, base, existing, time.time())
        inserts = {key: _for_driver(row) for key, row in group.inserts.items()}
        await _persist(conn, inserts, {key: _columns(row) for key, row in group.updates.items()})
        if group.audits and self.audit is not None:
            await self.audit.append_many(group.audits, conn)
        return group.outcomes

    async def write_many(
        self,
        items: Sequence[tuple[JsonObject, SchemaVersion]],
        publisher: Publisher,
        audit: AuditRecord | None = None,
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> list[tuple[int, Outcome]]:
        """Upsert valid entities in one transaction; (version, outcome) for each, in order. The same content
        again is ``unchanged`` (idempotent).

        ``before_commit`` is called once everything is written and only the commit is left: the batch route uses
        it to parse its next chunk while the database commits this one (on SQLite the commit runs in the driver's
        thread without the GIL, and it costs as much as the inserts)."""
        if not items:
            return []
        async with writer(self.engine), self.engine.begin() as conn:
            base = await self._reserve(conn, len(items))
            existing = await self._current(conn, [entity["id"] for entity, _ in items])
            results = await self._apply(conn, base, items, publisher, existing)
            await self._finish(conn, audit)
            if before_commit is not None:
                before_commit()
        return results

    # -- internals ------------------------------------------------------------------------------

    async def _reserve(self, conn: AsyncConnection, count: int) -> int:
        """Take the writers' lock and ``count`` sequence numbers; returns the number before the first.

        The first statement is a write, so SQLite takes its write lock at once. Numbers an unchanged entity does
        not use are simply skipped: the feed needs positions that grow in commit order, not dense ones.
        """
        result = await conn.execute(_RESERVE, {"count": count})
        return int(result.scalar_one()) - count

    async def _finish(self, conn: AsyncConnection, audit: AuditRecord | None) -> None:
        if audit is not None and self.audit is not None:
            await self.audit.append(audit, conn)

    async def _current(self, conn: AsyncConnection, ids: list[str]) -> dict[str, Any]:
        """What a write needs to know about the rows with these ids (not their payloads), keyed by id."""
        # One parameter for any number of ids: no per-id bind parameters for SQLAlchemy to expand and compile.
        dialect = conn.dialect.name
        rows = await conn.exec_driver_sql(_LOOKUP_SQL[dialect], (_id_list(dialect, sorted(set(ids))),))
        return {row.id: row for row in rows}

    async def _apply(
        self,
        conn: AsyncConnection,
        base: int,
        items: Sequence[tuple[JsonObject, SchemaVersion]],
        publisher: Publisher,
        existing: dict[str, Any],
    ) -> list[tuple[int, Outcome]]:
        now = time.time()
        inserts: dict[str, tuple[Any, ...]] = {}
        updates: dict[str, dict[str, Any]] = {}
        results: list[tuple[int, Outcome]] = []
        seq = base
        state: dict[str, tuple[str | None, int, float]] = {
            key: (row.content_hash, row.version, row.created_at) for key, row in existing.items()
        }
        for entity, schema in items:
            key = entity["id"]
            digest = content_hash(entity)
            previous = state.get(key)
            if previous is not None and previous[0] == digest:
                results.append((previous[1], Outcome.UNCHANGED))
                continue
            seq += 1
            version = previous[1] + 1 if previous else 1
            created_at = previous[2] if previous else now
            values = _values(
                entity,
                schema,
                digest=digest,
                version=version,
                seq=seq,
                now=now,
                created_at=created_at,
                publisher=publisher,
            )
            if key in existing:
                updates[key] = _columns(values)
            else:
                inserts[key] = _for_driver(values)
            state[key] = (digest, version, created_at)
            results.append((version, Outcome.CREATED if previous is None or previous[0] is None else Outcome.UPDATED))
        await _persist(conn, inserts, updates)
        return results


_Result = tuple[StoredEntity, Outcome] | Exception
"""What one single write of a group commit comes to: the stored entity and the outcome, or its own error."""


@dataclass
class _Group:
    """What a group commit writes: new rows and changed ones (``_NAMES`` order, the payload as the entity; the last
    write of an id wins), the audit records, and each op's outcome."""

    outcomes: list[_Result] = field(default_factory=list)
    inserts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    updates: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    audits: list[AuditRecord] = field(default_factory=list)


def _plan(ops: list[_Op], base: int, existing: dict[str, Any], now: float) -> _Group:
    """The rows, audit records and outcomes of ``ops``, in order, given the sequence number before the group's
    (``base``) and the current rows of their ids (``_LOOKUP_SQL``'s columns, keyed by id). Pure: it runs in
    ``aiosqlite``'s thread on SQLite and in the event loop on PostgreSQL."""
    state = {key: _State.of(row) for key, row in existing.items()}
    group = _Group()
    for index, op in enumerate(ops, start=1):
        current = state.get(op.entity_id)
        live = current is not None and current.live
        try:
            if op.kind == "create" and live:
                raise Conflict(f"{op.entity_id} exists already; use PUT to replace it")
            if op.kind == "delete" and not live:
                raise NotFound(f"no entity {op.entity_id}")
            _check_precondition(op.if_match, current.version if current is not None and live else None, op.entity_id)
        except GatewayError as error:
            group.outcomes.append(error)
            continue
        seq = base + index
        if op.kind == "delete":
            assert current is not None
            row = current.tombstone(op.entity_id, version=current.version + 1, seq=seq, now=now, publisher=op.publisher)
            state[op.entity_id] = replace(current, digest=None, version=current.version + 1, live=False)
            group.outcomes.append((_stored_tombstone(op.entity_id, current, row), Outcome.DELETED))
        else:
            assert op.entity is not None
            assert op.schema is not None
            digest = content_hash(op.entity)
            if current is not None and current.digest == digest:
                stored = _stored(op.entity, op.schema, version=current.version, seq=0, now=now, publisher=op.publisher)
                group.outcomes.append((stored, Outcome.UNCHANGED))
                if op.audit is not None:
                    group.audits.append(op.audit)
                continue
            version = current.version + 1 if current is not None else 1
            created_at = current.created_at if current is not None else now
            row = _values(
                op.entity,
                op.schema,
                digest=digest,
                version=version,
                seq=seq,
                now=now,
                created_at=created_at,
                publisher=op.publisher,
            )
            state[op.entity_id] = _State(
                digest,
                version,
                created_at,
                True,
                op.entity["type"],
                op.schema.collection,
                op.entity["city"],
                op.schema.version,
            )
            outcome = Outcome.UPDATED if live else Outcome.CREATED
            stored = _stored(op.entity, op.schema, version=version, seq=seq, now=now, publisher=op.publisher)
            group.outcomes.append((stored, outcome))
        (group.updates if op.entity_id in existing else group.inserts)[op.entity_id] = row
        if op.audit is not None:
            group.audits.append(op.audit)
    return group


def _group_in_sqlite(database: sqlite3.Connection, ops: list[_Op], audited: bool) -> list[_Result]:
    """The statements of :meth:`EntityStore._apply_ops` and the audit append, run by ``sqlite3`` in the connection's
    own thread, and the commit; rolled back on any error, so an entity never commits without its audit record or
    the other way round. The sequence row's update comes first and takes SQLite's write lock before any read, as
    :meth:`EntityStore._reserve` does."""
    try:
        if not database.in_transaction:  # whatever the connection's isolation level, these statements are one
            database.execute("BEGIN IMMEDIATE")
        ((value,),) = database.execute(_SQLITE_RESERVE, (len(ops), SEQUENCE_ROW)).fetchall()
        ids = _id_list("sqlite", sorted({op.entity_id for op in ops}))
        existing = {row[0]: row for row in database.execute(_LOOKUP_SQL["sqlite"], (ids,)).fetchall()}
        group = _plan(ops, int(value) - len(ops), existing, time.time())
        if group.inserts:
            database.executemany(_INSERT_SQL["qmark"], [_for_driver(row) for row in group.inserts.values()])
        if group.updates:
            database.executemany(_SQLITE_UPDATE, [_update_parameters(row) for row in group.updates.values()])
        if audited and group.audits:
            append_in_sqlite(database, group.audits, time.time())
        database.commit()
    except BaseException:
        database.rollback()
        raise
    return group.outcomes


async def _group_in_postgres(conn: Any, ops: list[_Op], audited: bool) -> list[_Result]:
    """The statements of :meth:`EntityStore._apply_ops` and the audit append on an ``asyncpg`` connection, in the
    transaction it has open (:class:`gateway.store.writer.PostgresWriter`), which the caller commits.

    The sequence row's update comes first and its lock is held until the commit, so the other worker's group waits
    for everything after it: four round trips here (the look-up; the entities with the chain head's bump, one
    statement; the audit records with the head's hash, one statement; the commit), each on a statement ``asyncpg``
    prepared once, with none of SQLAlchemy's per-statement work in between. Through SQLAlchemy it was six or seven
    (the inserts, the updates and the bump each one)."""
    value = await conn.fetchval(_POSTGRES_RESERVE, len(ops), SEQUENCE_ROW)
    rows = await conn.fetch(_LOOKUP_SQL["postgresql"], sorted({op.entity_id for op in ops}))
    group = _plan(ops, int(value) - len(ops), {row[0]: row for row in rows}, time.time())
    inserts = as_arrays([_for_driver(row) for row in group.inserts.values()], len(_NAMES))
    updates = as_arrays([_for_driver(row, null="null") for row in group.updates.values()], len(_NAMES))
    if not (audited and group.audits):
        if group.inserts or group.updates:
            await conn.execute(_POSTGRES_WRITE, *inserts, *updates)
        return group.outcomes
    head = await conn.fetchrow(_POSTGRES_WRITE_AND_BUMP, *inserts, *updates, len(group.audits), HEAD_ID)
    await append_bumped(conn, group.audits, (head[0], head[1]), time.time())
    return group.outcomes


def _update_parameters(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``_SQLITE_UPDATE``'s parameters for a row: the payload as the JSON column writes it (``null`` for none, as a
    tombstone's update through SQLAlchemy wrote it), the id last."""
    return (*row[1:_PAYLOAD], orjson.dumps(row[_PAYLOAD]).decode(), *row[_PAYLOAD + 1 :], row[0])


async def _persist(
    conn: AsyncConnection, inserts: dict[str, tuple[Any, ...]], updates: dict[str, dict[str, Any]]
) -> None:
    """Write new rows (driver values in ``_NAMES`` order) in one executemany insert and changed ones (column
    dicts) in one executemany update."""
    if inserts:
        # Straight to the driver: SQLAlchemy's per-parameter processing of a Core executemany cost more than
        # SQLite's own insert (35 against 16 us a row on the hub's table, in a one-off timing; bench/exchange.py
        # shows the batch as a whole). The rows are plain values already; only the payload needs its JSON text.
        statement = _INSERT_SQL[conn.dialect.paramstyle]
        await conn.exec_driver_sql(statement, list(inserts.values()))
    if updates:
        await conn.execute(
            entities.update().where(entities.c.id == sa.bindparam("b_id")),
            [{**row, "b_id": key} for key, row in updates.items()],
        )


_RESERVE = (
    entity_sequence.update()
    .where(entity_sequence.c.id == SEQUENCE_ROW)
    .values(value=entity_sequence.c.value + sa.bindparam("count", type_=sa.BigInteger))
    .returning(entity_sequence.c.value)
)
"""Built once: SQLAlchemy keeps a statement object's cache key, so a group commit does not build it again."""

_LOOKUP_SQL = {
    "sqlite": (
        "SELECT id, content_hash, version, created_at, type, collection, city, schema_version, "
        "NOT deleted AS live FROM entities WHERE id IN (SELECT value FROM json_each(?))"
    ),
    "postgresql": (
        "SELECT id, content_hash, version, created_at, type, collection, city, schema_version, "
        "NOT deleted AS live FROM entities WHERE id = ANY($1::varchar[])"
    ),
}


def _id_list(dialect: str, ids: list[str]) -> Any:
    """The ids as the one parameter of ``_LOOKUP_SQL``: a JSON array for SQLite, an array for asyncpg."""
    return orjson.dumps(ids).decode() if dialect == "sqlite" else ids


_NAMES = tuple(column.name for column in entities.columns)
_PAYLOAD = _NAMES.index("payload")
_INSERT_SQL = {
    style: f"INSERT INTO entities ({', '.join(_NAMES)}) VALUES ({', '.join(marks)})"  # noqa: S608 -- names from the table
    for style, marks in (
        ("qmark", ["?"] * len(_NAMES)),
        ("numeric_dollar", [f"${n}" for n in range(1, len(_NAMES) + 1)]),
    )
}
"""The insert in each driver's own parameter style (sqlite3: ``?``; asyncpg: ``$1``)."""

_SQLITE_RESERVE = "UPDATE entity_sequence SET value = value + ? WHERE id = ? RETURNING value"
_POSTGRES_RESERVE = "UPDATE entity_sequence SET value = value + $1 WHERE id = $2 RETURNING value"
_SQLITE_UPDATE = f"UPDATE entities SET {', '.join(f'{name} = ?' for name in _NAMES[1:])} WHERE id = ?"  # noqa: S608 -- names
"""What ``entities.update().where(entities.c.id == ...)`` of every column renders on SQLite (but the id's own)."""


_POSTGRES_WRITE = (
    f"WITH inserted AS (INSERT INTO entities ({', '.join(_NAMES)}) "  # noqa: S608 -- names and types
    f"SELECT * FROM unnest({unnest_parameters(entities, 1)})), "
    f"updated AS (UPDATE entities SET {', '.join(f'{name} = u.{name}' for name in _NAMES[1:])} "
    f"FROM unnest({unnest_parameters(entities, len(_NAMES) + 1)}) AS u({', '.join(_NAMES)}) WHERE entities.id = u.id) "
)
"""PostgreSQL: a group's new rows and changed ones in one statement, each given as one array per column (the same
values ``entities.insert()`` and ``entities.update()`` of every column would write); ends with the chain head's
bump (:data:`_POSTGRES_WRITE_AND_BUMP`) or nothing more. New and changed ids never overlap (:func:`_plan`)."""
_POSTGRES_WRITE_AND_BUMP = _POSTGRES_WRITE + postgres_bump_head(2 * len(_NAMES) + 1)
_POSTGRES_WRITE += "SELECT NULL"


def _for_driver(values: tuple[Any, ...], null: str | None = None) -> tuple[Any, ...]:
    """Row values (``_NAMES`` order) as the driver takes them: the payload as JSON text; no payload as ``null``
    (SQL NULL by default; ``"null"``, JSON's, is what an update through SQLAlchemy's JSON column wrote)."""
    payload = values[_PAYLOAD]
    if payload is None:
        return values if null is None else (*values[:_PAYLOAD], null, *values[_PAYLOAD + 1 :])
    return (*values[:_PAYLOAD], orjson.dumps(payload).decode(), *values[_PAYLOAD + 1 :])


def _values(
    entity: JsonObject,
    schema: SchemaVersion,
    *,
    digest: str,
    version: int,
    seq: int,
    now: float,
    created_at: float,
    publisher: Publisher,
) -> tuple[Any, ...]:
    """An entity's row, in ``_NAMES`` (column) order, with the payload as the entity itself."""
    box = bounding_box(entity) or _NO_BOX
    return (
        entity["id"],
        entity["type"],
        schema.collection,
        entity["city"],
        entity,
        digest,
        version,
        seq,
        False,
        posix_seconds(entity.get("dateModified")),
        *box,
        now,
        created_at,
        publisher.client_id,
        publisher.member,
        schema.version,
    )


_NO_BOX = (None, None, None, None)


def _columns(values: tuple[Any, ...]) -> dict[str, Any]:
    """Row values (``_NAMES`` order) as a column dict, for SQLAlchemy."""
    return dict(zip(_NAMES, values, strict=True))


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


def _check_precondition(if_match: str | None, version: int | None, entity_id: str) -> None:
    """412 unless ``If-Match`` is absent, ``*`` for a live entity, or names its current ETag."""
    if if_match is None:
        return
    if version is None:
        raise PreconditionFailed(f"If-Match given but {entity_id} does not exist")
    if if_match.strip() == "*":
        return
    etag = f'"{version}"'
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if etag not in candidates:
        raise PreconditionFailed(f"If-Match {if_match} does not match the current ETag {etag} of {entity_id}")


@dataclass
class _Op:
    """One single-entity write waiting for the next group commit."""

    kind: str  # "create", "put" or "delete"
    entity_id: str
    entity: JsonObject | None
    schema: SchemaVersion | None
    publisher: Publisher
    if_match: str | None
    audit: AuditRecord | None
    future: asyncio.Future[tuple[StoredEntity, Outcome]] = field(init=False)


@dataclass(frozen=True)
class _State:
    """What a write needs to know about an entity's current row."""

    digest: str | None
    version: int
    created_at: float
    live: bool
    type: str
    collection: str
    city: str
    schema_version: str

    @classmethod
    def of(cls, row: Any) -> _State:
        """From a row of ``_LOOKUP_SQL`` (id, content_hash, version, created_at, type, collection, city,
        schema_version, live): a SQLAlchemy row or the driver's tuple."""
        _, digest, version, created_at, type_name, collection, city, schema_version, live = row
        return cls(digest, version, created_at, bool(live), type_name, collection, city, schema_version)

    def tombstone(self, entity_id: str, *, version: int, seq: int, now: float, publisher: Publisher) -> tuple[Any, ...]:
        """The row (``_NAMES`` order) that replaces the entity's when it is deleted."""
        named = {
            "id": entity_id,
            "type": self.type,
            "collection": self.collection,
            "city": self.city,
            "payload": None,
            "content_hash": None,
            "version": version,
            "seq": seq,
            "deleted": True,
            "date_modified": None,
            "min_lon": None,
            "min_lat": None,
            "max_lon": None,
            "max_lat": None,
            "received_at": now,
            "created_at": self.created_at,
            "client_id": publisher.client_id,
            "member": publisher.member,
            "schema_version": self.schema_version,
        }
        return tuple(named[name] for name in _NAMES)


def _stored_tombstone(entity_id: str, state: _State, row: tuple[Any, ...]) -> StoredEntity:
    named = dict(zip(_NAMES, row, strict=True))
    return StoredEntity(
        entity_id,
        state.type,
        state.collection,
        state.city,
        None,
        named["version"],
        named["seq"],
        named["received_at"],
        named["client_id"],
        named["member"],
        state.schema_version,
    )
