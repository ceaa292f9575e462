"""The exchange store's hot reads (one entity, a list page), sent straight to the database driver.

A read is one statement outside any transaction, and SQLAlchemy's async layer cost it about ten times what the
driver's own call does (a ``SELECT`` took ~140 us of CPU through ``AsyncConnection.execute``, ~13 us through
``aiosqlite``'s ``execute_fetchall``, besides ~70 us to take a connection from the pool and give it back). So these
reads send their SQL through the driver: ``asyncpg`` ``fetch`` on a pooled connection for PostgreSQL; for a SQLite
file, ``sqlite3`` itself on a read-only connection of the event loop's own (see :func:`fetch`). The SQL is written
here in each dialect's parameter style, clause for clause what SQLAlchemy renders for the same filters, so the
planner picks the same indexes. Writes stay with SQLAlchemy.

    select = Select("sqlite", "service-requests")
    select.where_equal("city", "astana")
    sql, params = select.page(limit=101)
    rows = await fetch(engine, sql, params)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
import weakref
from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its connection is used
import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import SQLITE_CACHE_PRAGMA
from gateway.store.writer import asyncpg_options

COLUMNS = (
    "id, type, collection, city, CAST(payload AS TEXT) AS payload, version, seq, received_at, client_id, member, "
    "schema_version"
)
"""The columns of :class:`gateway.store.records.StoredEntity`, in its order; the payload as JSON text."""

PAYLOAD_COLUMNS = "id, CAST(payload AS TEXT) AS payload"
"""The id and the payload as JSON text: what a page of the collections API shows."""

_MEMBER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

HEAD_CHARS = 64
"""How much of a stored payload :func:`sqlite_json_columns` returns beside a payload it changed, for
:func:`gateway.store.entities.is_orjson_text` to tell how it was written."""


@functools.cache  # a page or GET asks for the same few; building the text each time cost a GET ~3 % of its CPU
def sqlite_json_columns(remove: frozenset[str]) -> str:
    """SQLite columns: the id, the payload's JSON text as bytes (``bytes``, ready for a response body) without its
    top-level members ``remove``, and, when ``remove`` is not empty, the first :data:`HEAD_CHARS` characters of the
    payload as stored.

    ``json_remove`` copies the rest of the text as it is (SQLite keeps each string's and number's spelling) and
    writes no whitespace, so the payload orjson wrote comes back as orjson would write it without those members.
    ``remove`` are schema property names (``x-personal``), never a client's text; a name that is not a plain
    identifier is refused rather than spliced in."""
    if not remove:
        return "id, CAST(payload AS BLOB) AS payload"
    for name in remove:
        if not _MEMBER.match(name):
            raise ValueError(f"cannot remove member {name!r} in SQL")
    paths = ", ".join(f"'$.{name}'" for name in sorted(remove))
    return f"id, CAST(json_remove(payload, {paths}) AS BLOB) AS payload, CAST(substr(payload, 1, {HEAD_CHARS}) AS BLOB)"


@functools.cache
def sqlite_get_json_sql(remove: frozenset[str]) -> str:
    """SQLite: one entity's collection, city and version, then :func:`sqlite_json_columns`, by id."""
    return f"SELECT collection, city, version, {sqlite_json_columns(remove)} FROM entities WHERE id = ?"  # noqa: S608


POSTGRES_COLUMNS = COLUMNS.replace("CAST(payload AS TEXT)", "convert_to(CAST(payload AS TEXT), 'UTF8')")
"""PostgreSQL: :data:`COLUMNS` with the payload's JSON text as UTF-8 ``bytes`` (``bytea``), which orjson parses as
it is, rather than as text, which ``asyncpg`` first decodes into a ``str`` (~0.7 us of a ServiceRequest's ~2.4 us
parse, its names and streets in Cyrillic)."""


@functools.cache
def postgres_payload_columns(remove: frozenset[str]) -> str:
    """PostgreSQL: the id and the payload's JSON text as UTF-8 ``bytes``, without its top-level members ``remove``
    (JSONB's ``-``, which leaves the other members and their order as they were). ``remove`` are schema property
    names, never a client's text; a name that is not a plain identifier is refused rather than spliced in."""
    payload = "payload"
    for name in sorted(remove):
        if not _MEMBER.match(name):
            raise ValueError(f"cannot remove member {name!r} in SQL")
        payload = f"{payload} - '{name}'"
    return f"id, convert_to(CAST({payload} AS TEXT), 'UTF8') AS payload"


@functools.cache
def postgres_get_json_sql(remove: frozenset[str]) -> str:
    """PostgreSQL: a live entity's collection, city and version, then :func:`postgres_payload_columns`, by id."""
    columns = postgres_payload_columns(remove)
    return f"SELECT collection, city, version, {columns} FROM entities WHERE id = $1 AND deleted IS false"  # noqa: S608


GET_SQL = {
    "sqlite": f"SELECT {COLUMNS} FROM entities WHERE id = ?",  # noqa: S608 -- no value is ever spliced in
    "postgresql": f"SELECT {POSTGRES_COLUMNS} FROM entities WHERE id = $1",  # noqa: S608
}


WALK = 10
"""A PostgreSQL page with payload filters first looks for its matches among this many times its length of rows in
id order (:meth:`Select.page`): a filter that every tenth row or more passes never needs the GIN index."""

WRITERS = 2
"""Pooled SQLite connections left to writers (the store's and the audit log's group commits) by the read gate."""

_GATES: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate(engine: AsyncEngine) -> asyncio.Semaphore | None:
    """On SQLite, the semaphore that keeps this process's reads within the connections the pool keeps.

    The pool keeps ``pool_size`` connections and closes every extra one when it comes back, and 16 concurrent
    requests each holding one for its read made it open and close connections all the time: a new connection (a
    thread, the connect, five PRAGMAs) cost more than the read itself, about half the CPU of a GET at that load
    (``bench/http_load.py``). SQLite reads in one process gain nothing from more connections than that, so they queue
    for one the pool keeps. PostgreSQL reads run in the server's own processes and are not held back."""
    if engine.dialect.name != "sqlite":
        return None
    gate = _GATES.get(engine.sync_engine)
    if gate is None:
        size = getattr(engine.sync_engine.pool, "size", None)
        if size is None:  # a pool that keeps no fixed number of connections
            return None
        gate = _GATES[engine.sync_engine] = asyncio.Semaphore(max(1, size() - WRITERS))
    return gate


async def fetch(engine: AsyncEngine, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """The rows of one read-only statement.

    On a SQLite file the statement runs right here, in the event loop's thread, on a connection kept for reads
    (:func:`_reader`): a read of one entity costs SQLite a few microseconds and a list page of 100 about a tenth of
    a millisecond, while handing it to ``aiosqlite``'s thread and back (and the pool's rollback when the connection
    returns, one more hand-off) cost ~4 thread switches, each waking the other thread and the loop. The connection
    never waits for a lock (``busy_timeout`` 0): in WAL mode a reader is not blocked by writers, and in the rare
    case SQLite still answers busy, the read takes the pooled path below, which waits in a thread. PostgreSQL and
    in-memory SQLite take a pooled connection and the driver's own call."""
    reader = _reader(engine)
    if reader is not None:
        try:
            return reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # busy or locked: wait for it off the loop, as any other read does
            pass
    if engine.dialect.name == "postgresql":
        return await _postgres_readers(engine).fetch(sql, params)
    async with _gate(engine) or contextlib.nullcontext(), engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        return list(await driver.execute_fetchall(sql, params))


READERS = 8
"""PostgreSQL connections kept for reads (:class:`PostgresReaders`), besides the engine's pool."""


class PostgresReaders:
    """``asyncpg`` connections of the event loop's own for PostgreSQL reads, outside SQLAlchemy's pool.

    Through the pool a read took a connection with a liveness check (``pool_pre_ping``: ``BEGIN``, ``;`` and
    ``ROLLBACK``, three round trips) and gave it back with a reset, and 16 concurrent requests kept opening and
    closing overflow connections (each a TLS attempt and a login): together more of a GET's CPU than the
    ``SELECT`` (py-spy, ``bench/http_load.py``). A read here is one statement in autocommit on a kept connection
    (``asyncpg`` prepares it once per connection and caches it). At most :data:`READERS` are open; a read that
    finds them all busy waits for one. A kept connection that turns out dead (a server restart) is dropped and the
    read is tried once on a new one, as the pool's check would have; the connections close on ``engine.dispose()``.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.options = asyncpg_options(engine)
        self.loop = asyncio.get_running_loop()
        self.idle: list[Any] = []
        self.slots = asyncio.Semaphore(READERS)
        self.closed = False

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.slots:
            if self.idle:
                conn = self.idle.pop()
                try:
                    return await self._run(conn, sql, params)
                except Exception:
                    if not conn.is_closed():  # the statement's own error: the connection is sound and kept
                        raise
                # The kept connection had died (a server restart, its session ended): once more on a new one.
            return await self._run(await asyncpg.connect(**self.options), sql, params)

    async def _run(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """``conn``'s rows of ``sql``; ``conn`` is kept after them or after the statement's own error, and closed
        after anything else (a cancellation mid-statement, a broken connection, a session the server ended)."""
        try:
            rows = await conn.fetch(sql, *params)
        except asyncpg.PostgresError as error:
            state = str(getattr(error, "sqlstate", None) or "")
            if state.startswith(("08", "57P")):  # connection exception, operator intervention (shutdown)
                conn.terminate()
            else:
                self._give(conn)
            raise
        except BaseException:
            conn.terminate()
            raise
        self._give(conn)
        return rows  # type: ignore[no-any-return]

    def _give(self, conn: Any) -> None:
        """Keep ``conn`` for the next read if it is open and outside a transaction; close it otherwise."""
        if self.closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
        else:
            self.idle.append(conn)

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().terminate()


_POSTGRES: weakref.WeakKeyDictionary[Any, PostgresReaders] = weakref.WeakKeyDictionary()


def _postgres_readers(engine: AsyncEngine) -> PostgresReaders:
    """``engine``'s :class:`PostgresReaders` in the running event loop (a new set in another loop, the old closed)."""
    key = engine.sync_engine
    readers = _POSTGRES.get(key)
    if readers is None or readers.closed or readers.loop is not asyncio.get_running_loop():
        if readers is not None:
            readers.close()
        readers = _POSTGRES[key] = PostgresReaders(engine)
        if not event.contains(key, "engine_disposed", _close_postgres_readers):
            event.listen(key, "engine_disposed", _close_postgres_readers)
    return readers


def _close_postgres_readers(engine: Any) -> None:
    readers = _POSTGRES.pop(engine, None)
    if readers is not None:
        readers.close()


_READERS: weakref.WeakKeyDictionary[Any, sqlite3.Connection | None] = weakref.WeakKeyDictionary()


def _reader(engine: AsyncEngine) -> sqlite3.Connection | None:
    """The read-only ``sqlite3`` connection the event loop reads ``engine``'s SQLite file with; None for PostgreSQL
    and for a database another connection could not see (in memory, or named by a URI).

    Autocommit (``isolation_level=None``): each statement is its own read transaction, which ends when its rows
    are all fetched, so a read always sees what was committed before it began. ``query_only`` refuses any write.
    Closed when the engine is collected; the pool's connections are closed by ``engine.dispose()``."""
    key = engine.sync_engine
    if key in _READERS:
        return _READERS[key]
    reader = None
    url = make_url(engine.url)
    database = url.database
    on_disk = bool(database) and database != ":memory:" and not str(database).startswith("file:")
    if url.get_backend_name() == "sqlite" and on_disk and not url.query:
        reader = sqlite3.connect(str(database), isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA busy_timeout=0")
        reader.execute("PRAGMA query_only=ON")
        reader.execute(SQLITE_CACHE_PRAGMA)
        weakref.finalize(key, reader.close)
    _READERS[key] = reader
    return reader


class Select:
    """A list page's ``SELECT`` over one collection, its filters added a clause at a time.

    >>> select = Select("postgresql", "devices")
    >>> select.where_equal("city", "astana")
    >>> select.page(limit=11)[0].split(" WHERE ")[1]
    'collection = $1 AND deleted IS false AND city = $2 ORDER BY id LIMIT $3'
    """

    def __init__(self, dialect: str, collection: str) -> None:
        self.postgres = dialect == "postgresql"
        self.params: list[Any] = []
        self.clauses: list[str] = []
        self.contains: list[str] = []
        """PostgreSQL: the payload filters (``payload @> ...``), which :meth:`page` applies its own way."""
        self.where_equal("collection", collection)
        self.clauses.append("deleted IS false" if self.postgres else "deleted IS 0")

    def _mark(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def where(self, column: str, operator: str, value: Any) -> None:
        """``column operator value``: the column is a name of this module's, never a client's text."""
        self.clauses.append(f"{column} {operator} {self._mark(value)}")

    def where_equal(self, column: str, value: Any) -> None:
        self.where(column, "=", value)

    def where_in(self, column: str, values: Sequence[Any]) -> None:
        marks = ", ".join(self._mark(value) for value in values)
        self.clauses.append(f"{column} IN ({marks})" if values else "1 != 1")  # as SQLAlchemy's empty IN

    def where_payload_equal(self, name: str, value: str | int | float | bool) -> None:
        """The payload's top-level member ``name`` equals ``value`` as JSON would compare them."""
        if self.postgres:  # containment uses the GIN index on the JSONB payload
            self.contains.append(f"payload @> {self._mark(orjson.dumps({name: value}).decode())}::JSONB")
        else:  # json_extract yields SQL integers, reals and text, so typed values compare as JSON would
            self.clauses.append(f"json_extract(payload, {self._mark(f'$.{name}')}) = {self._mark(value)}")

    def page(self, limit: int, columns: str = COLUMNS) -> tuple[str, list[Any]]:
        """The statement for ``limit`` rows in id order, and its parameters; ``columns`` is one of this module's
        column lists (:data:`COLUMNS`, :data:`POSTGRES_COLUMNS`, :data:`PAYLOAD_COLUMNS`,
        :func:`sqlite_json_columns`, :func:`postgres_payload_columns`), never a client's text."""
        where = " AND ".join(self.clauses)
        if self.contains:
            return self._walk_first(limit, columns, where, " AND ".join(self.contains)), self.params
        order = f"ORDER BY id LIMIT {self._mark(limit)}"
        return f"SELECT {columns} FROM entities WHERE {where} {order}", self.params  # noqa: S608

    def _walk_first(self, limit: int, columns: str, where: str, contains: str) -> str:
        """PostgreSQL's page with payload filters: the first ``limit`` matches in id order, looked for first among
        the first :data:`WALK` x ``limit`` rows of the other filters (``ix_entities_list``, in id order), and only
        when those hold too few, through the GIN index beyond the last of them.

        Left to itself the planner estimates ``payload @> ...`` at 1 % of the rows whatever the value: ``ANALYZE``
        keeps no statistics on values wider than 1 kB, and a payload is wider. For a common value (``status=open``,
        40 % of 100,000 rows) it then took the GIN index, fetched and sorted every match, ~165 ms, where walking the
        list index finds a page in a few hundred rows. The walk is a subquery with its own ``LIMIT``, so the filter
        cannot be pushed into it and the index order holds; the GIN part runs only when the walk found fewer than
        ``limit`` matches and did not run out of rows (its conditions are one-time filters). One statement, so one
        snapshot; the same rows as the plain query, in the same order."""
        n, k = self._mark(limit), self._mark(limit * WALK)
        # Every piece is this module's SQL and its parameters' marks: no value is ever spliced in.
        walk = f"SELECT entities.* FROM entities WHERE {where} ORDER BY id LIMIT {k}"  # noqa: S608
        walk_ids = f"SELECT id FROM entities WHERE {where} ORDER BY id LIMIT {k}"  # noqa: S608
        rest = (
            f"SELECT entities.* FROM entities WHERE {where} AND {contains} AND (SELECT count(*) FROM found) < {n} "  # noqa: S608
            f"AND (SELECT walked FROM edge) = {k} AND id > (SELECT last FROM edge) ORDER BY id LIMIT {n}"
        )
        return (
            f"WITH found AS MATERIALIZED (SELECT * FROM ({walk}) walk WHERE {contains} ORDER BY id LIMIT {n}), "  # noqa: S608
            f"edge AS MATERIALIZED (SELECT count(*) AS walked, max(id) AS last FROM ({walk_ids}) walk) "
            f"SELECT {columns} FROM (SELECT * FROM found UNION ALL ({rest})) entities ORDER BY id LIMIT {n}"
        )
