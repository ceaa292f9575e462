"""The store's group commit of single writes: on SQLite one call in the driver's thread (entity rows, change-feed
sequence and audit append in one ``sqlite3`` transaction), elsewhere through SQLAlchemy; both write the same rows,
a failure leaves nothing half-written, and concurrent writes keep distinct sequence numbers and one audit chain."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from gateway import audit as audit_module
from gateway.audit import AuditLog, AuditRecord, audit_log
from gateway.db import make_engine
from gateway.errors import Conflict, NotFound, PreconditionFailed
from gateway.migrate import upgrade
from gateway.store import entities as entities_module
from gateway.store.entities import EntityStore
from gateway.store.records import Outcome, Publisher
from gateway.store.tables import entities
from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR, read_json

EXAMPLE: dict[str, Any] = read_json(MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json")
SCHEMA = SchemaRegistry.load().get("service-requests")
PUBLISHER = Publisher("qc_writes", "970240001337")
TABLES = ("entities", "audit_log", "entity_sequence", "audit_head")


def entity(number: int, **changes: Any) -> dict[str, Any]:
    return {**EXAMPLE, "id": f"urn:ngsi-ld:ServiceRequest:astana:W{number:03d}", **changes}


def record(action: str, resource: str, **detail: Any) -> AuditRecord:
    return AuditRecord(action=action, outcome="ok", client_id=PUBLISHER.client_id, resource=resource, detail=detail)


async def open_store(url: str) -> EntityStore:
    """A store with its audit log on the database at ``url``, migrated; the caller disposes of its engine."""
    engine = make_engine(url)
    await upgrade(engine)
    audit = AuditLog(engine)
    await audit.ensure()
    store = EntityStore(engine, audit)
    await store.ensure()
    return store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EntityStore]:
    store = await open_store(database_url)
    yield store
    await store.engine.dispose()


async def table(store: EntityStore, which: sa.Table) -> list[dict[str, Any]]:
    order = which.c.seq
    async with store.engine.connect() as conn:
        return [dict(row._mapping) for row in (await conn.execute(sa.select(which).order_by(order))).all()]


async def mixed_writes(store: EntityStore) -> list[Any]:
    """Creates, replaces, an unchanged put, deletes and refused writes, some sharing a group commit."""

    async def write(kind: str, number: int, if_match: str | None = None, **changes: Any) -> Any:
        item = entity(number, **changes)
        audit = record(f"entity.{kind}", item["id"], n=number)
        if kind == "create":
            return await store.create(item, SCHEMA, PUBLISHER, audit)
        if kind == "put":
            return await store.put(item, SCHEMA, PUBLISHER, if_match, audit)
        return await store.delete(item["id"], PUBLISHER, if_match, audit)

    first = await asyncio.gather(*(write("create", n) for n in range(6)), write("create", 1), return_exceptions=True)
    second = await asyncio.gather(
        write("put", 0, description="Заменено."),  # an update
        write("put", 1),  # unchanged
        write("put", 2, if_match='"7"'),  # stale If-Match
        write("delete", 3),
        write("delete", 3),  # already deleted in the same group
        write("create", 4),  # exists
        write("put", 6),  # a new one, then deleted and written again in the same group
        write("delete", 6),
        write("put", 6, status="closed"),
        return_exceptions=True,
    )
    third = await asyncio.gather(write("delete", 0, if_match='"2"'), write("put", 3), return_exceptions=True)
    return [*first, *second, *third]


async def test_sqlite_single_call_writes_what_sqlalchemy_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same writes, once in one call in the driver's thread and once statement by statement through
    SQLAlchemy, leave the same entity rows and the same audit chain (the clock held still for both)."""
    clock = SimpleNamespace(time=lambda: 1_712_000_000.25)
    monkeypatch.setattr(entities_module, "time", clock)
    monkeypatch.setattr(audit_module, "time", clock)
    results: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for path in ("sqlite3", "sqlalchemy"):
        if path == "sqlalchemy":
            monkeypatch.setattr(entities_module, "sqlite_writer", lambda engine: asyncio.sleep(0, None))
        engine = make_engine(f"sqlite:///{tmp_path / path}.db")
        await upgrade(engine)
        audit = AuditLog(engine)
        await audit.ensure()
        store = EntityStore(engine, audit)
        await store.ensure()
        outcomes = await mixed_writes(store)
        results[path] = (
            [repr(o) for o in outcomes],
            await table(store, entities),
            await table(store, audit_log),
            (await audit.verify()).intact,
        )
        await engine.dispose()
        with contextlib.closing(sqlite3.connect(tmp_path / f"{path}.db")) as database:  # the values as stored
            stored[path] = [database.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall() for name in TABLES]
    assert results["sqlite3"] == results["sqlalchemy"]
    assert stored["sqlite3"] == stored["sqlalchemy"]
    outcomes, rows, records, intact = results["sqlite3"]
    assert intact
    assert len(records) == 14, "every write that was not refused is audited, unchanged ones too"
    assert [row["seq"] for row in rows] == sorted({row["seq"] for row in rows})
    tombstone = next(row for row in rows if row["id"].endswith("W000"))
    assert tombstone["deleted"]
    assert tombstone["payload"] is None
    assert tombstone["version"] == 3


async def test_outcomes_of_a_mixed_group(store: EntityStore) -> None:
    outcomes = await mixed_writes(store)
    kinds = [o[1] if isinstance(o, tuple) else type(o).__name__ for o in outcomes]
    assert kinds == [
        *["StoredEntity"] * 6,
        "Conflict",
        Outcome.UPDATED,
        Outcome.UNCHANGED,
        "PreconditionFailed",
        "NoneType",
        "NotFound",
        "Conflict",
        Outcome.CREATED,
        "NoneType",
        Outcome.CREATED,
        "NoneType",
        Outcome.CREATED,
    ]
    assert isinstance(outcomes[6], Conflict)
    assert isinstance(outcomes[9], PreconditionFailed)
    assert isinstance(outcomes[11], NotFound)
    assert (await store.get(entity(6)["id"])) is not None
    assert (await store.get(entity(0)["id"])) is None
    assert store.audit is not None
    assert (await store.audit.verify()).intact


async def test_a_failed_group_commit_leaves_nothing_half_written(store: EntityStore) -> None:
    """An audit record that cannot be written fails the whole transaction: neither its entity nor the other
    writes of its group are stored, the change feed and the audit chain stay where they were, and the next write
    goes through."""
    assert store.audit is not None
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.created", "one"))
    feed, chain = await store.head(), await store.audit.head()
    good = store.create(entity(2), SCHEMA, PUBLISHER, record("entity.created", "two"))
    bad = store.create(entity(3), SCHEMA, PUBLISHER, AuditRecord(action="x", outcome="ok", detail={"no": {1, 2}}))
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert all(isinstance(result, TypeError) for result in results), results
    assert await store.head() == feed
    assert await store.audit.head() == chain
    assert [row["id"] for row in await table(store, entities)] == [entity(1)["id"]]
    assert len(await table(store, audit_log)) == 1
    stored = await store.create(entity(2), SCHEMA, PUBLISHER, record("entity.created", "two"))
    assert stored.seq == feed + 1
    assert await store.audit.head() != chain
    assert (await store.audit.verify()).intact


async def test_concurrent_writes_get_distinct_sequence_numbers_and_one_chain(store: EntityStore) -> None:
    assert store.audit is not None
    created = await asyncio.gather(
        *(store.create(entity(n), SCHEMA, PUBLISHER, record("entity.created", str(n))) for n in range(50))
    )
    seqs = [stored.seq for stored in created]
    assert len(set(seqs)) == 50
    assert seqs == sorted(seqs), "group commits number their writes in the order they arrived"
    changes = await store.changes(0, ["service-requests"], 100)
    assert [change.seq for change in changes] == seqs
    report = await store.audit.verify()
    assert report.intact
    assert report.records == 50


async def test_sqlite_group_commits_share_one_connection_until_dispose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's and the audit log's group commits use one connection the engine keeps; a failed transaction on it
    is rolled back and the next write works; dispose closes it (and its thread), and a write after that opens
    another."""
    engine = make_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    await upgrade(engine)
    audit = AuditLog(engine)
    await audit.ensure()
    store = EntityStore(engine, audit)
    await store.ensure()
    held = await audit_module.sqlite_writer(engine)
    assert held is not None
    run, database = held
    await store.create(entity(1), SCHEMA, PUBLISHER, record("entity.create", entity(1)["id"]))
    await audit.append(record("token.issue", "qc_writes"))
    assert await audit_module.sqlite_writer(engine) == (run, database)  # the same connection, still held

    def failing(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(entities_module, "append_in_sqlite", failing)
        with pytest.raises(sqlite3.OperationalError):
            await store.create(entity(2), SCHEMA, PUBLISHER, record("entity.create", entity(2)["id"]))
    assert not await run(lambda: database.in_transaction)
    await store.create(entity(3), SCHEMA, PUBLISHER, record("entity.create", entity(3)["id"]))
    assert [row["id"][-4:] for row in await table(store, entities)] == ["W001", "W003"]
    assert (await audit.verify()).records == 3

    driver = run.__self__  # type: ignore[attr-defined]  # aiosqlite's connection, whose thread runs the writes
    assert driver._thread.is_alive()
    await engine.dispose()
    driver._thread.join(timeout=5)
    assert not driver._thread.is_alive(), "dispose closed the writer connection and its thread"
    await store.create(entity(4), SCHEMA, PUBLISHER, record("entity.create", entity(4)["id"]))
    assert (await audit_module.sqlite_writer(engine)) != (run, database)
    await engine.dispose()


def test_a_process_that_wrote_exits_after_dispose(tmp_path: Path) -> None:
    """The hub's shutdown path (write, then dispose) ends the process promptly, the writer connection closed."""
    script = f"""
import asyncio
from gateway.audit import AuditLog, AuditRecord
from gateway.db import make_engine
from gateway.migrate import upgrade

async def main():
    engine = make_engine("sqlite:///{tmp_path / "exit.db"}")
    await upgrade(engine)
    audit = AuditLog(engine)
    await audit.ensure()
    await audit.append(AuditRecord(action="a", outcome="ok", client_id="c", resource="r"))
    await engine.dispose()

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
