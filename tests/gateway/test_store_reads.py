"""The store's reads that go straight to the driver find exactly what the same filters find through SQLAlchemy."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.store import entities as store_module
from gateway.store import reads
from gateway.store.entities import EntityStore, ListQuery, is_orjson_text
from gateway.store.records import Publisher
from gateway.store.tables import entities
from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR, read_json

SCHEMA = SchemaRegistry.load().get("service-requests")
EXAMPLE: dict[str, Any] = read_json(MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json")
AFTER = "urn:ngsi-ld:ServiceRequest:astana:R10"
QUERIES = [
    ListQuery(limit=50),
    ListQuery(limit=5, city="astana"),
    ListQuery(limit=50, equals={"firstContactResolved": True}),
    ListQuery(limit=50, equals={"status": "open", "firstContactResolved": False}),
    ListQuery(limit=2, equals={"status": "closed", "firstContactResolved": False}),  # rare, and late in id order
    ListQuery(limit=3, equals={"status": "open"}),  # common
    ListQuery(limit=1, city="astana", equals={"status": "closed"}),
    ListQuery(limit=4, after=AFTER, equals={"firstContactResolved": True}),
    ListQuery(limit=5, equals={"status": "none such"}),
    ListQuery(limit=50, cities=("almaty",)),
    ListQuery(limit=50, cities=()),
    ListQuery(limit=50, after=AFTER),
    ListQuery(limit=50, updated_since=1_710_000_000.0),
    ListQuery(limit=50, bbox=(71.0, 51.0, 72.0, 52.0)),
    ListQuery(limit=50, bbox=(0.0, 0.0, 1.0, 1.0)),
]


def entity(number: int) -> dict[str, Any]:
    city = ("astana", "almaty")[number % 2]
    return {
        **EXAMPLE,
        "id": f"urn:ngsi-ld:ServiceRequest:{city}:R{number:02d}",
        "city": city,
        "status": "open" if number % 3 else "closed",
        "firstContactResolved": bool(number % 2),
        "dateModified": f"2024-03-{1 + number % 28:02d}T09:00:00+05:00",
        "location": {"type": "Point", "coordinates": [71.4 if number % 4 else 10.0, 51.1]},
    }


def sqlalchemy_ids(engine: AsyncEngine, query: ListQuery) -> sa.Select[Any]:
    """The list query as the store built it with SQLAlchemy before its reads went to the driver."""
    stmt = sa.select(entities.c.id).where(entities.c.collection == "service-requests", entities.c.deleted.is_(False))
    if query.city is not None:
        stmt = stmt.where(entities.c.city == query.city)
    if query.cities is not None:
        stmt = stmt.where(entities.c.city.in_(list(query.cities)))
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
        if engine.dialect.name == "postgresql":
            stmt = stmt.where(sa.type_coerce(entities.c.payload, JSONB).contains({name: value}))
        else:
            stmt = stmt.where(sa.func.json_extract(entities.c.payload, f"$.{name}") == value)
    return stmt.order_by(entities.c.id).limit(query.limit)


@pytest.fixture
async def store(database_url: str) -> Any:
    engine = make_engine(database_url)
    await upgrade(engine)
    store = EntityStore(engine)
    await store.ensure()
    schema = SchemaRegistry.load().get("service-requests")
    await store.write_many([(entity(n), schema) for n in range(30)], Publisher("qc_reads", None))
    yield store
    await engine.dispose()


@pytest.mark.parametrize("walk", [reads.WALK, 1, 2])
async def test_list_pages_match_the_same_filters_through_sqlalchemy(
    store: EntityStore, walk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with PostgreSQL's walk before the GIN index (Select._walk_first) short enough that a page needs both."""
    monkeypatch.setattr(reads, "WALK", walk)
    for query in QUERIES:
        page, _ = await store.list_page("service-requests", query)
        async with store.engine.connect() as conn:
            expected = [row.id for row in await conn.execute(sqlalchemy_ids(store.engine, query))]
        assert [stored.id for stored in page] == expected, query
    everything, last = await store.list_page("service-requests", ListQuery(limit=50))
    assert {stored.id: stored.payload for stored in everything} == {entity(n)["id"]: entity(n) for n in range(30)}
    assert last is None
    assert (await store.list_page("service-requests", ListQuery(limit=29)))[1] == everything[28].id


async def test_get_reads_live_entities_and_not_tombstones(store: EntityStore) -> None:
    stored = await store.get(entity(3)["id"])
    assert stored is not None
    assert stored.payload == entity(3)
    assert (stored.version, stored.collection, stored.client_id) == (1, "service-requests", "qc_reads")
    await store.delete(entity(3)["id"], Publisher("qc_reads", None), None)
    assert await store.get(entity(3)["id"]) is None  # the tombstone's payload is JSON null, not SQL NULL
    assert await store.get("urn:ngsi-ld:ServiceRequest:astana:none") is None


async def test_a_busy_sqlite_read_takes_the_pooled_path(store: EntityStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop's SQLite connection never waits for a lock; when SQLite answers busy, the read goes to the
    pool's connection and finds the same rows."""
    if store.engine.dialect.name != "sqlite":
        assert reads._reader(store.engine) is None
        return
    expected = await store.list_page("service-requests", ListQuery(limit=50, city="astana"))
    one = await store.get(entity(4)["id"])
    assert reads._reader(store.engine) is not None
    assert one is not None

    class Busy:
        def execute(self, *_: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setitem(reads._READERS, store.engine.sync_engine, Busy())
    assert await store.list_page("service-requests", ListQuery(limit=50, city="astana")) == expected
    assert await store.get(entity(4)["id"]) == one


async def test_sqlite_reads_see_what_was_just_committed(store: EntityStore) -> None:
    schema = SchemaRegistry.load().get("service-requests")
    changed = {**entity(5), "status": "closed" if entity(5)["status"] == "open" else "open"}
    for _ in range(3):  # the loop's connection keeps no read transaction open between reads
        await store.write_many([(changed, schema)], Publisher("qc_reads", None))
        stored = await store.get(changed["id"])
        assert stored is not None
        assert stored.payload == changed
        changed = {**changed, "status": "open" if changed["status"] == "closed" else "closed"}


ODD_VALUES: list[Any] = [
    1.0,
    1e20,
    1e-05,
    -0.0,
    0.1 + 0.2,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    'ünïcödé Қазақстан 🚧 \u2028\u2029 \x01\x1f\t\n "quoted" back\\slash </script>',
    {"nested": [{"deep": [[], {}, None, True, False, "x"]}], "": "empty key", "ключ": "значение"},
    [],
    {},
    "",
]


def odd_entity(number: int) -> dict[str, Any]:
    """An entity whose members spell JSON in ways a re-rendering could change: odd numbers, escapes, nesting."""
    odd = ODD_VALUES[number % len(ODD_VALUES)]
    base = entity(number)
    extra = {"x-odd": odd, "description": f'{odd!r} "{number}"', "note": {"value": odd, "list": [odd, odd]}}
    if number % 3 == 0:
        base = {key: value for key, value in base.items() if key not in ("contactName", "contactPhone")}
    if number % 5 == 0:  # a personal member first
        return {"contactEmail": f"r{number}@example.kz", **base, **extra}
    return {**base, **extra}


class NoParsing:
    """Stands in for orjson in the store's module: a payload the store parses fails the test."""

    dumps = staticmethod(orjson.dumps)

    @staticmethod
    def loads(_: Any) -> Any:
        raise AssertionError("the store parsed a payload it should have sent as stored")


@pytest.mark.parametrize("hidden", [(), ("contactName",), ("contactName", "contactPhone", "contactEmail")])
async def test_a_pages_json_text_is_what_orjson_renders_for_its_payloads(
    database_url: str, hidden: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """list_json's and get_json's text, read as the database renders it, is on SQLite byte for byte what rendering
    list_payloads' payloads without the hidden members gives, and on PostgreSQL the same JSON value (JSONB's text),
    for every query and over payloads whose spelling a re-rendering could change; neither is parsed in Python."""
    engine = make_engine(database_url)
    postgres = engine.dialect.name == "postgresql"

    def same(texts: list[bytes], payloads: list[dict[str, Any]]) -> bool:
        expected = [orjson.dumps({k: v for k, v in p.items() if k not in remove}) for p in payloads]
        return [orjson.loads(t) for t in texts] == list(map(orjson.loads, expected)) if postgres else texts == expected

    try:
        await upgrade(engine)
        store = EntityStore(engine)
        await store.ensure()
        schema = SchemaRegistry.load().get("service-requests")
        await store.write_many([(odd_entity(n), schema) for n in range(40)], Publisher("qc_reads", None))
        await store.delete(odd_entity(7)["id"], Publisher("qc_reads", None), None)
        remove = frozenset(hidden)
        for query in [*QUERIES, ListQuery(limit=7), ListQuery(limit=100, city="almaty")]:
            payloads, last = await store.list_payloads("service-requests", query)
            with monkeypatch.context() as patched:
                patched.setattr(store_module, "orjson", NoParsing)
                texts, after = await store.list_json("service-requests", query, remove)
            assert same(texts, payloads), query
            assert after == last, query
            if postgres:
                assert all(text.startswith(b'{"') and b'", "' in text for text in texts)  # JSONB's own spelling
        for n in range(40):
            stored = await store.get(odd_entity(n)["id"])
            with monkeypatch.context() as patched:
                patched.setattr(store_module, "orjson", NoParsing)
                found = await store.get_json(odd_entity(n)["id"], remove)
            if stored is None:
                assert found is None  # the tombstone
                continue
            assert stored.payload is not None
            assert found is not None
            assert found[:3] == (stored.collection, stored.city, stored.version)
            assert same([found.text], [stored.payload])
            assert found.etag == stored.etag
        assert await store.get_json("urn:ngsi-ld:ServiceRequest:astana:none", remove) is None
    finally:
        await engine.dispose()


async def test_payloads_the_standard_library_wrote_are_rendered_as_orjson_would(tmp_path: Path) -> None:
    """A payload stored before the store used orjson (``{"id": "..."``, non-ASCII as \\u escapes) is not sent as
    stored: it is parsed and rendered, as every payload was before."""
    engine = make_engine(f"sqlite:///{tmp_path}/legacy.db")
    try:
        await upgrade(engine)
        store = EntityStore(engine)
        await store.ensure()
        schema = SchemaRegistry.load().get("service-requests")
        await store.write_many([(odd_entity(n), schema) for n in range(6)], Publisher("qc_reads", None))
        async with engine.begin() as conn:
            for n in (1, 4):
                legacy = json.dumps(odd_entity(n))
                assert '": ' in legacy
                assert "\\u" in legacy
                await conn.execute(
                    sa.text("UPDATE entities SET payload = :text WHERE id = :id"),
                    {"text": legacy, "id": odd_entity(n)["id"]},
                )
        for remove in (frozenset(), frozenset({"contactName", "contactEmail"})):
            texts = await store.list_json("service-requests", ListQuery(limit=50), remove)
            payloads, _ = await store.list_payloads("service-requests", ListQuery(limit=50))
            assert texts[0] == [orjson.dumps({k: v for k, v in p.items() if k not in remove}) for p in payloads]
            for n in (1, 4):
                found = await store.get_json(odd_entity(n)["id"], remove)
                assert found is not None
                assert found.text == orjson.dumps({k: v for k, v in odd_entity(n).items() if k not in remove})
        assert [is_orjson_text(orjson.dumps(odd_entity(n))) for n in range(3)] == [True] * 3
        assert not is_orjson_text(json.dumps(odd_entity(1)).encode())
        assert not is_orjson_text(b'{"a\\"b":1}')  # a first name with an escape: parsed, never guessed
        assert not is_orjson_text(b'{"id": "x"}')
        assert not is_orjson_text(b'{"id":')  # the head ends at the colon
        assert is_orjson_text(b'{"idx":1}')
        assert not is_orjson_text(b'{"' + b"k" * 70)  # the head ends before the first name does
    finally:
        await engine.dispose()


async def pooled_rows(engine: AsyncEngine, sql: str, params: list[Any]) -> list[Any]:
    """The rows of ``sql`` as PostgreSQL reads got them before :class:`reads.PostgresReaders`: the driver's own
    ``fetch`` on a connection of SQLAlchemy's pool (which has SQLAlchemy's codecs)."""
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        return list(await driver.fetch(sql, *params))


async def test_postgres_reads_get_the_rows_the_pooled_connection_got(store: EntityStore) -> None:
    """What GET and list pages read on the store's own connections, the payload as UTF-8 bytes, is what the SQL
    they ran before gave on a pooled connection, the payload as text: the same entities, rendered byte for byte
    alike (members in JSONB's order)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own read connections")
    await store.write_many([(odd_entity(n), SCHEMA) for n in range(30, 60)], Publisher("qc_reads", None))
    for key in (entity(4)["id"], odd_entity(35)["id"], odd_entity(40)["id"], "urn:ngsi-ld:ServiceRequest:x:none"):
        before = await pooled_rows(store.engine, f"SELECT {reads.COLUMNS} FROM entities WHERE id = $1", [key])
        stored = await store.get(key)
        expected = store_module._row_to_entity(before[0]) if before else None
        assert stored == expected
        assert orjson.dumps(stored.payload if stored else None) == orjson.dumps(expected.payload if expected else None)
    for query in [*QUERIES, ListQuery(limit=100)]:
        sql, params = store._select("service-requests", query).page(query.limit + 1, reads.COLUMNS)
        before = [store_module._row_to_entity(row) for row in await pooled_rows(store.engine, sql, params)]
        page, last = await store.list_page("service-requests", query)
        assert page == before[: query.limit], query
        assert last == (page[-1].id if len(before) > query.limit else None), query
        payloads, after = await store.list_payloads("service-requests", query)
        assert orjson.dumps(payloads) == orjson.dumps([stored.payload for stored in page]), query
        assert after == last, query


async def test_postgres_reads_keep_few_connections_and_close_them_on_dispose(store: EntityStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own read connections")
    slow_sql = "SELECT pg_sleep(0.05), id FROM entities WHERE id = $1"
    results = await asyncio.gather(*(reads.fetch(store.engine, slow_sql, [entity(n)["id"]]) for n in range(20)))
    assert [rows[0][1] for rows in results] == [entity(n)["id"] for n in range(20)]
    readers = reads._postgres_readers(store.engine)
    assert 1 <= len(readers.idle) <= reads.READERS
    kept = list(readers.idle)
    await store.engine.dispose()
    assert readers.closed
    assert not readers.idle
    assert all(conn.is_closed() for conn in kept)
    assert (await store.get(entity(5)["id"])) is not None  # a new set after dispose
    assert reads._postgres_readers(store.engine) is not readers


async def test_a_postgres_read_survives_its_kept_connection_dying(store: EntityStore) -> None:
    """A kept connection the server ended (as a restart would) is dropped and the read runs on a new one, as the
    pool's pre-ping check did; an error of the statement leaves the connection in use."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own read connections")
    assert await store.get(entity(1)["id"]) is not None
    readers = reads._postgres_readers(store.engine)
    (conn,) = readers.idle
    async with store.engine.connect() as admin:
        await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": conn.get_server_pid()})
    stored = await store.get(entity(1)["id"])
    assert stored is not None
    assert stored.payload == entity(1)
    assert conn.is_closed()
    assert len(readers.idle) == 1
    assert readers.idle[0] is not conn
    with pytest.raises(asyncpg.UndefinedTableError):
        await reads.fetch(store.engine, "SELECT * FROM no_such_table", [])
    assert len(readers.idle) == 1
    assert not readers.idle[0].is_closed()


async def test_a_cancelled_postgres_read_does_not_keep_its_connection(store: EntityStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own read connections")
    task = asyncio.create_task(reads.fetch(store.engine, "SELECT pg_sleep(5)", []))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reads._postgres_readers(store.engine).idle == []
    assert (await store.get(entity(2)["id"])) is not None
