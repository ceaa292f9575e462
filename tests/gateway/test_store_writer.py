"""PostgreSQL group commits on the connections kept for them (:mod:`gateway.store.writer`): the same rows, outcomes
and audit chain as statement by statement through SQLAlchemy's pool; a kept connection that died is replaced
before anything is written, a failed statement rolls back and keeps it, a cancelled one closes it, and
``engine.dispose()`` closes them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psycopg
import pytest
import sqlalchemy as sa

from gateway import audit as audit_module
from gateway.audit import AuditRecord, audit_log
from gateway.store import entities as entities_module
from gateway.store import writer as writer_module
from gateway.store.entities import EntityStore
from gateway.store.tables import entities
from tests.conftest import _postgres_database
from tests.gateway.test_store_writes import (
    PUBLISHER,
    SCHEMA,
    TABLES,
    entity,
    mixed_writes,
    open_store,
    record,
    table,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EntityStore]:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's kept writer connections")
    store = await open_store(database_url)
    yield store
    await store.engine.dispose()


def kept(store: EntityStore, role: str) -> writer_module.PostgresWriter:
    writer = writer_module.postgres_writer(store.engine, role)
    assert writer is not None
    return writer


def server_pid(store: EntityStore, role: str) -> int:
    conn = kept(store, role).conn
    assert conn is not None
    return int(conn.get_server_pid())


async def terminate(store: EntityStore, pid: int) -> None:
    async with store.engine.connect() as admin:
        assert (await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar()
    await asyncio.sleep(0.05)  # the server has closed the socket by now, as after a restart


async def test_kept_connections_write_what_sqlalchemy_writes(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same single writes and audit appends, on the kept connections and through SQLAlchemy's pool, leave the
    same outcomes, the same entity rows and audit chain, and the same values as PostgreSQL stores them (a
    tombstone's JSON null, Cyrillic text, a record without detail), the clock held still for both."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's kept writer connections")
    clock = SimpleNamespace(time=lambda: 1_712_000_000.25)
    monkeypatch.setattr(entities_module, "time", clock)
    monkeypatch.setattr(audit_module, "time", clock)
    results: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for path in ("kept", "sqlalchemy"):
        if path == "sqlalchemy":
            monkeypatch.setattr(entities_module, "postgres_writer", lambda engine, role: None)
            monkeypatch.setattr(audit_module, "postgres_writer", lambda engine, role: None)
        with contextlib.ExitStack() as stack:
            fresh = contextlib.contextmanager(_postgres_database)
            url = database_url if path == "kept" else stack.enter_context(fresh())
            store = await open_store(url)
            engine, audit = store.engine, store.audit
            assert audit is not None
            outcomes = await mixed_writes(store)
            alone = await asyncio.gather(
                audit.append(AuditRecord(action="api.call", outcome="ok", status=200, route="/api/v1/whoami")),
                audit.append(AuditRecord(action="api.call", outcome="refused", detail={"причина": "scope", "n": 3})),
            )
            results[path] = (
                [repr(o) for o in outcomes],
                alone,
                await table(store, entities),
                await table(store, audit_log),
                (await audit.verify()).intact,
            )
            await engine.dispose()
            with psycopg.connect(url.replace("+asyncpg", "")) as database:  # the values as stored
                stored[path] = [
                    database.execute(
                        f"SELECT to_jsonb(t)::text FROM {name} t ORDER BY 1"  # the tables' names
                    ).fetchall()
                    for name in TABLES
                ]
    assert results["kept"] == results["sqlalchemy"]
    assert stored["kept"] == stored["sqlalchemy"]
    _, alone, rows, records, intact = results["kept"]
    assert intact
    assert len(records) == 16
    assert [seq for seq, _ in alone] == [15, 16]
    tombstone = next(row for row in rows if row["id"].endswith("W000"))
    assert tombstone["deleted"]
    assert tombstone["payload"] is None


async def test_group_commits_keep_one_connection_each(store: EntityStore) -> None:
    assert store.audit is not None
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.created", "one"))
    await store.audit.append(record("api.call", "one"))
    pids = server_pid(store, "store"), server_pid(store, "audit")
    assert pids[0] != pids[1], "the store's and the audit log's group commits never wait for each other's connection"
    await asyncio.gather(
        *(store.create(entity(n), SCHEMA, PUBLISHER, record("entity.created", str(n))) for n in range(2, 30)),
        *(store.audit.append(record("api.call", str(n))) for n in range(30)),
    )
    assert (server_pid(store, "store"), server_pid(store, "audit")) == pids
    assert (await store.audit.verify()).intact


async def test_a_dead_kept_connection_is_replaced_before_anything_is_written(store: EntityStore) -> None:
    """A kept connection the server ended (as a restart would) fails its ``BEGIN``: the transaction runs on a new
    one, as the pool's pre-ping check did, and the write goes through once."""
    assert store.audit is not None
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.created", "one"))
    await store.audit.append(record("api.call", "one"))
    for role in ("store", "audit"):
        await terminate(store, server_pid(store, role))
    dead = kept(store, "store").conn, kept(store, "audit").conn
    stored = await store.create(entity(2), SCHEMA, PUBLISHER, record("entity.created", "two"))
    seq, _ = await store.audit.append(record("api.call", "two"))
    assert stored.seq == 2
    assert seq == 4
    assert all(conn.is_closed() for conn in dead)
    assert kept(store, "store").conn not in dead
    assert kept(store, "audit").conn not in dead
    assert [row["id"] for row in await table(store, entities)] == [entity(1)["id"], entity(2)["id"]]
    assert (await store.audit.verify()).intact


async def test_a_refused_statement_rolls_back_and_keeps_the_connection(store: EntityStore) -> None:
    """A value the table refuses (longer than its column: refused, never cut to fit) fails its group commit, which
    leaves the chain and the feed where they were; the kept connection serves the next one."""
    assert store.audit is not None
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.created", "one"))
    await store.audit.append(record("api.call", "one"))
    feed, chain = await store.head(), await store.audit.head()
    pids = server_pid(store, "store"), server_pid(store, "audit")
    too_long = AuditRecord(action="api.call", outcome="ok", member="9" * 13)
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await store.audit.append(too_long)
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await store.create(entity(2), SCHEMA, PUBLISHER, too_long)
    for write in (  # an entity's value longer than its column, new or changed
        store.create(entity(2, city="x" * 33), SCHEMA, PUBLISHER, record("entity.created", "two")),
        store.put(entity(1, city="x" * 33), SCHEMA, PUBLISHER, None, record("entity.updated", "one")),
    ):
        with pytest.raises(asyncpg.StringDataRightTruncationError):
            await write
    assert (await store.head(), await store.audit.head()) == (feed, chain)
    await store.create(entity(3), SCHEMA, PUBLISHER, record("entity.created", "three"))
    await store.audit.append(record("api.call", "three"))
    assert (server_pid(store, "store"), server_pid(store, "audit")) == pids
    assert not kept(store, "store").conn.is_in_transaction()
    assert [row["id"] for row in await table(store, entities)] == [entity(1)["id"], entity(3)["id"]]
    assert (await store.audit.verify()).intact


async def test_a_cancelled_transaction_closes_its_connection(store: EntityStore) -> None:
    """A caller cancelled while its transaction runs in the writer's thread cancels it there: the connection, in an
    unknown state, is closed, and the next transaction opens another."""
    writer = kept(store, "audit")
    running: list[Any] = []

    async def slow(conn: Any) -> None:
        running.append(conn)
        await conn.execute("SELECT pg_sleep(5)")

    task = asyncio.create_task(writer.run(slow))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):  # the cancellation reaches the writer's thread a moment later
        if running[0].is_closed():
            break
        await asyncio.sleep(0.02)
    assert running[0].is_closed()
    assert writer.conn is None
    assert store.audit is not None
    assert (await store.audit.append(record("api.call", "after")))[0] == 1
    assert writer.conn is not None
    assert writer.conn is not running[0]


async def test_transactions_run_in_the_writers_own_thread(store: EntityStore) -> None:
    """The statements run in the writer's thread, not in the loop that serves requests, whose other work would
    otherwise delay every round trip while the locks are held."""
    writer = kept(store, "store")
    threads: list[threading.Thread] = []

    async def where(conn: Any) -> int:
        threads.append(threading.current_thread())
        return int(await conn.fetchval("SELECT 1"))

    assert await writer.run(where) == 1
    assert threads[0] is not threading.current_thread()
    assert threads[0].name == "qala-postgres-writer"


async def test_dispose_closes_the_kept_connections(store: EntityStore) -> None:
    assert store.audit is not None
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.created", "one"))
    await store.audit.append(record("api.call", "one"))
    writers = kept(store, "store"), kept(store, "audit")
    conns = [writer.conn for writer in writers]
    await store.engine.dispose()
    assert all(writer.closed for writer in writers)
    assert all(conn is not None and conn.is_closed() for conn in conns)
    assert not any(writer._thread.is_alive() for writer in writers)
    await store.create(entity(2), SCHEMA, PUBLISHER, record("entity.created", "two"))  # new ones after dispose
    assert kept(store, "store") not in writers
    assert (await store.audit.verify()).intact
