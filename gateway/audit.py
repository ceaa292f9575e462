"""The append-only, hash-chained audit log: who did what, when, with what outcome, under which trace.

Each record carries a sequence number and ``record_hash = SHA-256(canonical JSON of the record, including
prev_hash)``, so editing, removing or reordering any record breaks the chain. A one-row *head* holds the last
sequence number and hash; every append updates it *first*, which takes PostgreSQL's row lock and SQLite's write
lock, so appends from many workers are serialised and the chain stays linear. An append costs O(1): it never
touches the Merkle tree over the records (:mod:`gateway.audit_tree`), which grows only when a tree head is signed
(:mod:`gateway.checkpoints`). A chain alone can be rebuilt by anyone who can write to the database; signed tree
heads kept *outside* it (``qala audit witness``, ``verify --against``) are what make a rewrite detectable.

``append`` joins the caller's transaction when given a connection, so an entity and its audit record commit
together or not at all:

    async with engine.begin() as conn:
        await conn.execute(entities.insert().values(...))
        await audit.append(AuditRecord(action="entity.create", outcome="ok", client_id="qc_1"), conn)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db import JsonColumn, metadata, writer
from gateway.merkle import EMPTY_ROOT, Frontier, leaf_hash
from gateway.store.writer import as_arrays, postgres_writer, unnest_parameters

GENESIS_HASH = "0" * 64
HEAD_ID = 1
MAX_BATCH = 500

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("client_id", sa.String(64), nullable=True, index=True),
    sa.Column("member", sa.String(12), nullable=True),
    sa.Column("method", sa.String(16), nullable=True),
    sa.Column("route", sa.String(300), nullable=True),
    sa.Column("resource", sa.String(500), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("detail", JsonColumn, nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

HASHED_FIELDS = (
    "seq",
    "at",
    "action",
    "outcome",
    "status",
    "client_id",
    "member",
    "method",
    "route",
    "resource",
    "trace_id",
    "detail",
    "prev_hash",
)


@dataclass(frozen=True)
class AuditRecord:
    """What happened. ``detail`` holds extra JSON (strings and integers; floats would not hash stably)."""

    action: str  # e.g. "token.issued", "token.refused", "api.call", "client.created"
    outcome: str  # "ok", "refused", "error", or an OAuth error code
    status: int | None = None
    client_id: str | None = None
    member: str | None = None
    method: str | None = None
    route: str | None = None
    resource: str | None = None
    trace_id: str | None = None
    detail: dict[str, Any] | None = field(default=None)


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes a record hash covers: sorted keys, no whitespace, UTF-8.

    What ``json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`` gives (the
    definition, :func:`canonical_json`), made by orjson when both give the same bytes: for values of exactly the
    types str, int, bool and None in dicts with str keys and lists. Both write these alike (the same escapes,
    non-ASCII as it is, keys sorted by code point, which is their UTF-8 order). Anything else, floats above all
    (``1e16`` against ``1e+16``), and what orjson refuses (integers beyond 64 bits, lone surrogates) takes the
    definition itself. orjson cost ~1 us a record where the definition cost ~6, in the store's writer thread."""
    if _plain(fields):
        try:
            return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return canonical_json(fields)


def canonical_json(fields: dict[str, Any]) -> bytes:
    """The definition of :func:`canonical`: the standard library's JSON."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_SCALARS = frozenset({str, int, bool, type(None)})
_KEYS = frozenset({str})


def _plain(value: dict[str, Any]) -> bool:
    """Whether ``value`` holds, at any depth, only dicts with str keys, lists, and str, int, bool or None (exact
    types: a subclass, an enum or a tuple may be written otherwise by one of the two). Each container's members are
    looked at in one pass in C (``issuperset`` over their types); only one holding a container is walked into."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            if not _KEYS.issuperset(map(type, node)):
                return False
            members = node.values()
        elif kind is list:
            members = node
        elif kind in _SCALARS:
            continue
        else:
            return False
        if not _SCALARS.issuperset(map(type, members)):
            stack.extend(members)
    return True


def entry(fields: dict[str, Any]) -> bytes:
    """The bytes of one record as a log entry: what its chain hash and its Merkle leaf both cover."""
    return canonical({name: fields[name] for name in HASHED_FIELDS})


def record_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(entry(fields)).hexdigest()


# The statements of an append, built once (SQLAlchemy keeps a statement object's cache key), and the insert of the
# rows straight to the driver: SQLAlchemy's per-row parameter handling in an executemany cost more than the rows.
_BUMP_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == HEAD_ID)
    .values(seq=audit_head.c.seq + sa.bindparam("count", type_=sa.BigInteger))
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_SET_HEAD_HASH = audit_head.update().where(audit_head.c.id == HEAD_ID).values(hash=sa.bindparam("hash"))
_LOG_COLUMNS = tuple(column.name for column in audit_log.columns)
_INSERT_SQL = {
    style: f"INSERT INTO audit_log ({', '.join(_LOG_COLUMNS)}) VALUES ({', '.join(marks)})"  # noqa: S608 -- names
    for style, marks in (
        ("qmark", ["?"] * len(_LOG_COLUMNS)),
        ("numeric_dollar", [f"${n}" for n in range(1, len(_LOG_COLUMNS) + 1)]),
    )
}


def _timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _chained(
    records: list[AuditRecord], last_seq: int, prev_hash: str, now: float
) -> tuple[list[tuple[Any, ...]], list[tuple[int, str]]]:
    """The rows (``_LOG_COLUMNS`` order, as the driver takes them) of ``records`` appended after the head
    ``last_seq`` (the head once they are in) and ``prev_hash``, and each one's (seq, hash).

    Each record's hashed fields (:data:`HASHED_FIELDS`) and row are written out here rather than gathered by name
    (a dict of the record's fields, :func:`entry`'s, a row by ``_LOG_COLUMNS``): three dicts and a generator a
    record fewer, in the store's writer thread. A test holds the rows and hashes to those of the gathering."""
    seq = last_seq - len(records)
    at = _timestamp(now)
    rows, results = [], []
    for record in records:
        seq += 1
        hashed = {
            "seq": seq,
            "at": at,
            "action": record.action,
            "outcome": record.outcome,
            "status": record.status,
            "client_id": record.client_id,
            "member": record.member,
            "method": record.method,
            "route": record.route,
            "resource": record.resource,
            "trace_id": record.trace_id,
            "detail": record.detail,
            "prev_hash": prev_hash,
        }
        digest = hashlib.sha256(canonical(hashed)).hexdigest()
        rows.append(
            (
                seq,
                at,
                record.action,
                record.outcome,
                record.status,
                record.client_id,
                record.member,
                record.method,
                record.route,
                record.resource,
                record.trace_id,
                orjson.dumps(record.detail).decode(),  # as the JSON column writes it; None: null
                prev_hash,
                digest,
            )
        )
        results.append((seq, digest))
        prev_hash = digest
    return rows, results


def postgres_bump_head(first: int) -> str:
    """PostgreSQL's bump of the chain head by ``$first`` records (the head's id ``$first + 1``), returning the new
    last sequence number and the hash before: the chain lock. A statement of the caller's may end with it (the
    store's group commit bumps the head in the statement that writes its entities)."""
    return f"UPDATE audit_head SET seq = seq + ${first} WHERE id = ${first + 1} RETURNING seq, hash"  # noqa: S608


_POSTGRES_BUMP_HEAD = postgres_bump_head(1)
_POSTGRES_APPEND = (
    f"WITH appended AS (INSERT INTO audit_log ({', '.join(_LOG_COLUMNS)}) "  # noqa: S608 -- names and types
    f"SELECT * FROM unnest({unnest_parameters(audit_log, 1)})) "
    f"UPDATE audit_head SET hash = ${len(_LOG_COLUMNS) + 1} WHERE id = ${len(_LOG_COLUMNS) + 2}"
)
"""The records' insert and the head's new hash in one statement (one round trip while the chain lock is held): each
column's values as an array of the column's type, which ``unnest`` zips back into rows."""


async def append_in_postgres(conn: Any, records: list[AuditRecord], now: float) -> list[tuple[int, str]]:
    """The statements of :meth:`AuditLog._append_many` on an ``asyncpg`` connection, in the transaction it has open
    (:meth:`AuditLog._commit_alone`): the head's bump first (the chain lock), then :func:`append_bumped`."""
    last_seq, prev_hash = await conn.fetchrow(_POSTGRES_BUMP_HEAD, len(records), HEAD_ID)
    return await append_bumped(conn, records, (last_seq, prev_hash), now)


async def append_bumped(
    conn: Any, records: list[AuditRecord], head: tuple[int, str], now: float
) -> list[tuple[int, str]]:
    """Write ``records`` and the head's new hash on an ``asyncpg`` connection, in the transaction that has just
    bumped the head by ``len(records)`` (:func:`postgres_bump_head`), which returned ``head`` (seq, hash)."""
    last_seq, prev_hash = head
    rows, results = _chained(records, last_seq, prev_hash, now)
    await conn.execute(
        _POSTGRES_APPEND, *as_arrays(rows, len(_LOG_COLUMNS)), results[-1][1] if results else prev_hash, HEAD_ID
    )
    return results


_SQLITE_BUMP_HEAD = "UPDATE audit_head SET seq = seq + ? WHERE id = ? RETURNING seq, hash"
_SQLITE_SET_HEAD_HASH = "UPDATE audit_head SET hash = ? WHERE id = ?"


def append_in_sqlite(database: sqlite3.Connection, records: list[AuditRecord], now: float) -> list[tuple[int, str]]:
    """The statements of :meth:`AuditLog._append_many` on a ``sqlite3`` connection, in the transaction it has open
    (called in the connection's own thread, inside a transaction that a caller begins and commits: the store's
    group commit, :func:`_append_in_sqlite`)."""
    ((last_seq, prev_hash),) = database.execute(_SQLITE_BUMP_HEAD, (len(records), HEAD_ID)).fetchall()
    rows, results = _chained(records, last_seq, prev_hash, now)
    database.executemany(_INSERT_SQL["qmark"], rows)
    database.execute(_SQLITE_SET_HEAD_HASH, (results[-1][1] if results else prev_hash, HEAD_ID))
    return results


def _append_in_sqlite(database: sqlite3.Connection, records: list[AuditRecord], now: float) -> list[tuple[int, str]]:
    """The statements of :meth:`AuditLog._append_many`, run by ``sqlite3`` in the connection's own thread, and the
    commit; rolled back on any error. The transaction takes SQLite's write lock before it reads anything, as the
    head's update does first in :meth:`AuditLog._append_many`."""
    try:
        if not database.in_transaction:  # whatever the connection's isolation level, these statements are one
            database.execute("BEGIN IMMEDIATE")
        results = append_in_sqlite(database, records, now)
        database.commit()
    except BaseException:
        database.rollback()
        raise
    return results


SqliteCall = Callable[..., Awaitable[Any]]
"""``aiosqlite``'s own hand-off: ``await run(function, *args)`` calls ``function(*args)`` in the connection's thread."""


async def sqlite_thread(conn: AsyncConnection) -> tuple[SqliteCall, sqlite3.Connection] | None:
    """For a connection of a SQLite engine through ``aiosqlite``: the call that runs a function in the driver's
    thread, and the ``sqlite3`` connection that function may use there (and only there). None for any other driver
    (PostgreSQL), which then goes through SQLAlchemy."""
    if conn.dialect.name != "sqlite":
        return None
    driver: Any = (await conn.get_raw_connection()).driver_connection
    run, database = getattr(driver, "_execute", None), getattr(driver, "_conn", None)
    if run is None or not isinstance(database, sqlite3.Connection):
        return None
    return run, database


_WRITER = "_qala_sqlite_writer"
log = logging.getLogger("qala.audit")


async def sqlite_writer(engine: AsyncEngine) -> tuple[SqliteCall, sqlite3.Connection] | None:
    """:func:`sqlite_thread` for the one connection a SQLite engine keeps for its group commits (the store's and the
    audit log's), instead of a pool checkout and return per group (~115 us of CPU, the return's rollback a hand-off
    to the driver's thread). Use it only under :func:`gateway.db.writer`'s lock, and leave the connection with no
    transaction open (commit or roll back in the same call). ``engine.dispose()`` closes it (a checked-out connection
    outlives its pool's dispose: its thread and file would stay open until the process ends). None for any other
    driver."""
    if engine.dialect.name != "sqlite":
        return None
    held: tuple[AsyncConnection, SqliteCall, sqlite3.Connection] | None = getattr(engine.sync_engine, _WRITER, None)
    if held is None:
        conn = await engine.connect()
        thread = await sqlite_thread(conn)
        if thread is None:
            await conn.close()
            return None
        held = (conn, *thread)
        setattr(engine.sync_engine, _WRITER, held)
        if not event.contains(engine.sync_engine, "engine_disposed", _close_writer):
            event.listen(engine.sync_engine, "engine_disposed", _close_writer)
    return held[1], held[2]


def _close_writer(engine: Engine) -> None:
    """On ``engine.dispose()`` (run in SQLAlchemy's greenlet, so the driver's close can be awaited): close the
    writer connection and its thread; the next :func:`sqlite_writer` opens another from the new pool."""
    held: tuple[AsyncConnection, SqliteCall, sqlite3.Connection] | None = engine.__dict__.pop(_WRITER, None)
    if held is None:
        return
    try:
        # Invalidate, not close: close would return it to the pool dispose has just emptied, open.
        held[0].sync_connection.invalidate()  # type: ignore[union-attr]
    except Exception:  # pragma: no cover - dispose must go on
        log.exception("closing the SQLite writer connection failed")


@dataclass(frozen=True)
class Verification:
    """The result of walking the chain. ``problem`` names the first record found altered, removed or reordered."""

    intact: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    first_bad_seq: int | None = None
    checkpoints: int = 0


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[tuple[AuditRecord, asyncio.Future[tuple[int, str]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def ensure(self) -> None:
        """Create the chain head once (racing workers are harmless)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(audit_head.insert().values(id=HEAD_ID, seq=0, hash=GENESIS_HASH))
        except IntegrityError:
            pass

    async def append(self, record: AuditRecord, conn: AsyncConnection | None = None) -> tuple[int, str]:
        """Append ``record``; returns its sequence number and hash once it is committed.

        With ``conn``, the record joins that transaction (and commits or rolls back with it). Without, it is
        *group-committed*: concurrent appends share one transaction, so under load the chain lock is taken once
        per batch rather than once per record, and every caller still waits until its record is durable.
        """
        if conn is not None:
            return (await self._append_many(conn, [record]))[0]
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def append_many(self, records: list[AuditRecord], conn: AsyncConnection) -> list[tuple[int, str]]:
        """Append ``records`` in ``conn``'s transaction, in order (the exchange API's group commits)."""
        return await self._append_many(conn, records)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            records = [record for record, _ in batch]
            try:
                async with writer(self.engine):
                    results = await self._commit_alone(records)
            except Exception as exc:  # every waiting caller learns that its record was not written
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _commit_alone(self, records: list[AuditRecord]) -> list[tuple[int, str]]:
        """Append ``records`` in a transaction of their own and commit it.

        On SQLite the whole transaction is one call in ``aiosqlite``'s thread (:func:`_append_in_sqlite`): through
        SQLAlchemy each of its statements, cursors and the commit was a hand-off to that thread and back, about
        fifteen per group commit, which cost an audited GET more than a third of its CPU. On PostgreSQL the
        transaction runs on a connection kept for it, in a thread of its own
        (:func:`gateway.store.writer.postgres_writer`), and holds the chain lock for three round trips (the head's
        bump, the records with the head's hash, the commit), where through SQLAlchemy's pool it held it for four,
        after a checkout's liveness check of three more. Any other driver goes through SQLAlchemy."""
        thread = await sqlite_writer(self.engine)
        if thread is not None:
            run, database = thread
            results: list[tuple[int, str]] = await run(_append_in_sqlite, database, records, time.time())
            return results
        kept = postgres_writer(self.engine, "audit")
        if kept is not None:
            appended: list[tuple[int, str]] = await kept.run(
                lambda driver: append_in_postgres(driver, records, time.time())
            )
            return appended
        async with self.engine.connect() as conn, conn.begin():
            return await self._append_many(conn, records)

    async def _append_many(self, conn: AsyncConnection, records: list[AuditRecord]) -> list[tuple[int, str]]:
        # Bumping the head first takes the chain lock (PostgreSQL row lock, SQLite write lock) before any read.
        bumped = await conn.execute(_BUMP_HEAD, {"count": len(records)})
        last_seq, prev_hash = bumped.one()
        rows, results = _chained(records, last_seq, prev_hash, time.time())
        await conn.exec_driver_sql(_INSERT_SQL[conn.dialect.paramstyle], rows)
        await conn.execute(_SET_HEAD_HASH, {"hash": results[-1][1] if results else prev_hash})
        return results

    async def head(self) -> tuple[int, str]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash))).first()
        return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))

    async def records(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Records with ``seq > after``, oldest first."""
        query = sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(limit)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    async def last(self, count: int) -> list[dict[str, Any]]:
        query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(count)
        async with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in (await conn.execute(query)).all()]
        return rows[::-1]

    async def _walk(self, batch: int = 2000) -> AsyncIterator[dict[str, Any]]:
        after = 0
        while True:
            rows = await self.records(after=after, limit=batch)
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1]["seq"]

    async def verify(
        self, checkpoints: Mapping[int, str] | None = None, roots: Mapping[int, str] | None = None
    ) -> Verification:
        """Walk the whole chain, recomputing the Merkle tree as it goes.

        ``checkpoints`` maps signed sequence numbers to the chain hash signed for them, ``roots`` maps signed tree
        sizes to the Merkle root signed for them (hex): any record rewritten, removed or reordered below a signed
        size breaks that root, even when every later chain hash was recomputed."""
        signed = dict(checkpoints or {})
        heads = dict(roots or {})
        expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
        head_seq, head_hash = await self.head()
        frontier = Frontier.empty()
        signatures = len(signed.keys() | heads.keys())

        def broken(seq: int, problem: str) -> Verification:
            return Verification(False, count, head_seq, head_hash, problem, seq, signatures)

        if 0 in heads and heads[0] != EMPTY_ROOT.hex():
            return broken(0, "the signed tree head of the empty log is not the empty root")
        async for row in self._walk():
            seq = row["seq"]
            if seq > head_seq:
                break  # appended after the head was read: a later verification covers it
            if seq != expected_seq:
                gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                return broken(
                    expected_seq, f"record {gap} removed: the sequence jumps from {expected_seq - 1} to {seq}"
                )
            if row["prev_hash"] != prev_hash:
                return broken(
                    seq,
                    f"record {seq} does not link to record {seq - 1}: "
                    f"a record was reordered, removed or rewritten around position {seq}",
                )
            if record_hash(row) != row["record_hash"]:
                return broken(seq, f"record {seq} altered: its content no longer matches its hash")
            frontier.append(leaf_hash(entry(row)))
            if seq in heads and (
                heads[seq] != frontier.root().hex() or signed.get(seq, row["record_hash"]) != row["record_hash"]
            ):
                return broken(
                    seq, f"records 1..{seq} differ from the signed tree head of size {seq}: the log was rewritten"
                )
            if seq in signed and signed[seq] != row["record_hash"]:
                return broken(seq, f"record {seq} differs from the signed checkpoint: the chain was rewritten")
            prev_hash, expected_seq, count = row["record_hash"], seq + 1, count + 1
        if head_seq != count:
            first = count + 1
            return broken(first, f"records {first}..{head_seq} removed from the end (the chain head is at {head_seq})")
        if head_hash != prev_hash:
            return broken(count, f"record {count} altered: it does not match the chain head")
        missing = sorted(seq for seq in signed.keys() | heads.keys() if seq > count)
        if missing:
            return broken(
                count + 1,
                f"records {count + 1}..{missing[-1]} removed: a signed tree head covers {missing[-1]} records",
            )
        return Verification(True, count, head_seq, head_hash, checkpoints=signatures)
