"""The ``asyncpg`` connection a PostgreSQL group commit keeps for its transactions, outside SQLAlchemy's pool.

The store's and the audit log's group commits run one transaction at a time each, so each needs one connection,
not a pool. Through SQLAlchemy's pool every group took a connection with a liveness check (``BEGIN``, ``;``,
``ROLLBACK``: three round trips before the first statement), gave it back with a reset (``ROLLBACK``), and paid the
async layer's cost on every statement (~100 us of CPU each). Under ``wrk`` with two workers, the transactions that
hold the sequence row's and the audit head's locks spent most of that time waiting for the hub, not for the
database (``pg_stat_activity``: *idle in transaction*, ``ClientRead``): every round trip and every microsecond of
the hub between the lock and the commit is time the other worker's group waits. A transaction here is ``BEGIN``,
the statements (``asyncpg`` prepares each once per connection and keeps it), ``COMMIT``, run in the writer's own
thread (:class:`PostgresWriter`)::

    async def bump(conn: Any) -> Any:
        return await conn.fetchrow("UPDATE audit_head SET seq = seq + $1 WHERE id = $2 RETURNING seq, hash", 1, 1)

    kept = postgres_writer(engine, "audit")
    if kept is not None:
        head = await kept.run(bump)

A kept connection the server ended (a restart) is found at ``BEGIN``, before anything was written: it is dropped
and the transaction begins on a new one, as the pool's check would have done. A statement's error rolls the
transaction back and keeps the connection; a cancellation, or a connection that broke mid-transaction, closes it.
``engine.dispose()`` closes the kept connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its connection is used
import sqlalchemy as sa
import uvloop
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def asyncpg_options(engine: AsyncEngine) -> dict[str, Any]:
    """``asyncpg.connect``'s keyword arguments for ``engine``'s database, as SQLAlchemy's dialect would pass them
    (without the options only SQLAlchemy understands)."""
    _, options = engine.dialect.create_connect_args(engine.url)
    for sqlalchemy_only in ("async_creator_fn", "prepared_statement_cache_size", "prepared_statement_name_func"):
        options.pop(sqlalchemy_only, None)
    return dict(options)


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def unnest_parameters(table: sa.Table, first: int) -> str:
    """``$first::type[], ...``: one array parameter per column of ``table``, in its order, for ``unnest`` to zip back
    into rows. Each array has its column's type without a length: a cast to ``VARCHAR(n)[]`` would cut a longer
    value where an insert of the row refuses it."""
    kinds = [column.type.compile(dialect=_DIALECT).split("(")[0] for column in table.columns]
    return ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(kinds, start=first))


def as_arrays(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows of ``width`` values as one list per column: the arrays :func:`unnest_parameters` takes."""
    return [list(values) for values in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


class PostgresWriter:
    """One ``asyncpg`` connection for one group commit's transactions, one at a time, in a thread of its own.

    The thread runs an event loop that does nothing else, so a reply of the database resumes the transaction at
    once; on the hub's loop it waited its turn behind every request ready to run (under wrk with 16 requests per
    worker, ~2 ms a round trip: a POST group commit took 10.7 ms with one worker and 14-16 ms with two, the locks
    held for most of it). The requests' loop only hands the work over and is handed the result. ``bench/scaleout.py
    --quick`` with and without the thread, alternated three times on a shared machine: 2-worker/1-worker POST
    0.68, 0.66, 0.87 -> 0.96, 0.86, 0.97; GET 1.41, 1.00, 0.89 -> 1.80, 1.04, 1.16."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.options = asyncpg_options(engine)
        self.loop = asyncio.get_running_loop()
        """The loop of the callers (a writer serves one)."""
        self.conn: Any = None
        self.closed = False
        # uvloop, as uvicorn runs the requests' loop: on the standard library's selector loop the writer's wake-ups
        # and asyncpg's socket work were about a fifth of an audited GET's CPU on PostgreSQL (py-spy); on uvloop the
        # hub's CPU per request fell by 3 % (GET) and 10 % (POST) (bench/compare.py, six rounds within 2 %).
        self._own = uvloop.new_event_loop()
        self._lock: asyncio.Lock | None = None  # made in the writer's loop, on its first transaction
        self._thread = threading.Thread(target=self._own.run_forever, name="qala-postgres-writer", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``await work(conn)`` in a transaction on the kept connection, in the writer's thread: committed when it
        returns, rolled back if it raises (its exception is raised here). ``work`` runs in that thread: it may read
        what the caller handed it, and must not touch the caller's loop."""
        if self.closed:
            raise RuntimeError("the PostgreSQL writer was closed (engine disposed)")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._transaction(work), self._own))

    async def _transaction(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # a second caller of the same role waits rather than interleave statements
            conn = await self._begin()
            try:
                result = await work(conn)
                await conn.execute("COMMIT")
            except Exception:
                await self._roll_back(conn)
                raise
            except BaseException:  # cancelled mid-statement: what the connection holds is unknown
                conn.terminate()
                raise
            finally:
                self._keep(conn)
            return result

    async def _begin(self) -> Any:
        """``BEGIN`` on the kept connection, or on a new one when the kept one is gone or fails it."""
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.execute("BEGIN")
                return conn
            except Exception:  # noqa: S110 -- a dead connection (a server restart): nothing was written yet
                pass
            except BaseException:
                conn.terminate()
                raise
            conn.terminate()
        conn = await asyncpg.connect(**self.options)
        try:
            await conn.execute("BEGIN")
        except BaseException:
            conn.terminate()
            raise
        return conn

    @staticmethod
    async def _roll_back(conn: Any) -> None:
        """End a failed transaction; close the connection if even that fails."""
        if conn.is_closed() or not conn.is_in_transaction():
            return
        try:
            await conn.execute("ROLLBACK")
        except BaseException:
            conn.terminate()
            raise

    def _keep(self, conn: Any) -> None:
        if self.closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
        else:
            self.conn = conn

    def close(self, wait: float = 5.0) -> None:
        """Cancel a transaction under way (its caller gets ``CancelledError``), close the connection and end the
        thread, waiting for it up to ``wait`` seconds."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError):  # its loop already closed
            asyncio.run_coroutine_threadsafe(self._shut(), self._own)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(wait)
        if not self._thread.is_alive():
            self._own.close()

    async def _shut(self) -> None:
        under_way = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in under_way:
            task.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()
            await asyncio.sleep(0)  # the transport closes its socket in the loop's next round
        asyncio.get_running_loop().stop()


_WRITERS: weakref.WeakKeyDictionary[Any, dict[str, PostgresWriter]] = weakref.WeakKeyDictionary()


def postgres_writer(engine: AsyncEngine, role: str) -> PostgresWriter | None:
    """``engine``'s :class:`PostgresWriter` for ``role`` (``"store"``, ``"audit"``: one connection each, so the two
    group commits never wait for each other's connection) in the running event loop; None for any other database
    or driver. A writer of another loop is closed and replaced."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
        return None
    key = engine.sync_engine
    kept = _WRITERS.setdefault(key, {})
    writer = kept.get(role)
    if writer is None or writer.closed or writer.loop is not asyncio.get_running_loop():
        if writer is not None:
            writer.close()
        writer = kept[role] = PostgresWriter(engine)
        weakref.finalize(key, writer.close, 0)  # an engine collected without dispose: end the thread all the same
        if not event.contains(key, "engine_disposed", _close_writers):
            event.listen(key, "engine_disposed", _close_writers)
    return writer


def _close_writers(engine: Any) -> None:
    for writer in _WRITERS.pop(engine, {}).values():
        writer.close()
