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

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import SQLITE_CACHE_PRAGMA

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


GET_SQL = {
    "sqlite": f"SELECT {COLUMNS} FROM entities WHERE id = ?",  # noqa: S608 -- no value is ever spliced in
    "postgresql": f"SELECT {COLUMNS} FROM entities WHERE id = $1",  # noqa: S608
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
    async with _gate(engine) or contextlib.nullcontext(), engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            return list(await driver.fetch(sql, *params))
        return list(await driver.execute_fetchall(sql, params))


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
        column lists (:data:`COLUMNS`, :data:`PAYLOAD_COLUMNS`, :func:`sqlite_json_columns`), never a client's
        text."""
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
