"""The engine against the hub's real store (SQLite and PostgreSQL): KPIValues written through the store with
lineage, audited, in the change feed; late data revises a closed day and the revision stays visible."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gateway.audit import AuditLog
from gateway.kpi_feed import ENGINE_CLIENT, hub_engine
from gateway.services import open_services
from gateway.settings import Settings
from gateway.store.entities import EntityStore
from gateway.store.records import Publisher
from schemas import SchemaRegistry
from tests.cityscore.factories import KZ, air, case, payment, vehicle

REGISTRY = SchemaRegistry.load()
CITY_SYSTEM = Publisher("qc_payments", None)


async def _write(store: EntityStore, *entities: dict[str, object]) -> None:
    await store.write_many([(e, REGISTRY.validate(e)) for e in entities], CITY_SYSTEM)


async def test_kpis_through_the_store_and_a_late_payment_revises_a_closed_day(database_url: str) -> None:
    async with open_services(Settings(database_url=database_url)) as services:
        store = EntityStore(services.engine, AuditLog(services.engine))
        await store.ensure()
        engine = hub_engine(services.engine, REGISTRY)
        await _write(store, payment("p1", 600, "100.00"), payment("p2", 660, "50.00"))  # 2026-11-02, long closed

        assert await engine.tick() > 0
        day_id = "urn:ngsi-ld:KPIValue:astana:payments.count-day-2026-11-02"
        first = await store.get(day_id)
        assert first is not None
        assert first.payload is not None
        assert first.client_id == ENGINE_CLIENT
        figure = first.payload
        assert (figure["value"], figure["final"], figure["revision"]) == (2, True, 0)
        assert figure["source"] == "Qala KPI book 1.0.0"
        assert figure["lineage"]["bookVersion"] == "1.0.0"
        assert figure["lineage"]["entities"] == 2
        assert figure["lineage"]["windowStart"] == "2026-11-02T00:00:00+05:00"
        assert figure["target"] == round(1_000_000 / 30, 6)
        assert 0 < figure["score"] < 0.001
        assert await engine.tick() == 0  # nothing new: nothing written

        await _write(store, payment("p3", 700, "25.00"))  # late data for the closed day
        await engine.tick()
        revised = await store.get(day_id)
        assert revised is not None
        assert revised.payload is not None
        assert (revised.payload["value"], revised.payload["revision"]) == (3, 1)
        assert revised.payload["revisions"][0]["value"] == 2
        assert revised.version == first.version + 1

        feed = await store.changes(0, ["kpi-values"], 1000)
        assert day_id in {row.id for row in feed}
        scores = [row.payload for row in feed if row.payload and row.payload["kpiCode"] == "cityscore"]
        assert {s["period"] for s in scores} == {"day", "week", "month"}
        audited = await services.audit.records(limit=1000)
        assert any(r["action"] == "kpi.computed" and r["client_id"] == ENGINE_CLIENT for r in audited)

        # a restarted engine learns the revisions from the feed and keeps counting
        again = hub_engine(services.engine, REGISTRY)
        await again.tick()
        await _write(store, payment("p4", 720, "1.00"))
        await again.tick()
        latest = await store.get(day_id)
        assert latest is not None
        assert latest.payload is not None
        assert (latest.payload["value"], latest.payload["revision"]) == (4, 2)
        assert [r["value"] for r in latest.payload["revisions"]] == [2, 3]


async def test_the_open_day_is_provisional(database_url: str) -> None:
    async with open_services(Settings(database_url=database_url)) as services:
        store = EntityStore(services.engine, AuditLog(services.engine))
        await store.ensure()
        engine = hub_engine(services.engine, REGISTRY)
        now = datetime.now(KZ).replace(microsecond=0) - timedelta(minutes=1)
        entity = payment("today", 0)
        entity["dateBooked"] = entity["dateModified"] = now.isoformat()
        await _write(store, entity)
        await engine.tick()
        rows = await store.changes(0, ["kpi-values"], 1000)
        today = [r.payload for r in rows if r.payload and r.payload["periodStart"] == now.date().isoformat()]
        assert today
        assert all(p["final"] is False and "revision" not in p for p in today)
        latency = next(p for p in today if p["kpiCode"] == "data.latency-median" and "groupKey" not in p)
        assert 0 < latency["value"] < 3600  # seconds, not days


async def test_the_engine_reads_the_feed_as_the_store_gives_it(database_url: str) -> None:
    """The engine's feed goes to the driver with SQL of its own; it must give, page by page, what the store's own
    change feed gives: every collection, updates at their new position, deletions as tombstones."""
    rng = random.Random(7)
    async with open_services(Settings(database_url=database_url)) as services:
        store = EntityStore(services.engine, AuditLog(services.engine))
        await store.ensure()
        makers = [
            lambda n: payment(f"p{n}", rng.randrange(5000), f"{rng.randrange(1, 9999) / 100:.2f}"),
            lambda n: case(
                f"c{n}", rng.randrange(5000), closed_after=rng.choice([None, 90]), fcr=rng.choice([None, True])
            ),
            lambda n: air(f"a{n}", rng.choice(["s1", "s2"]), rng.randrange(5000), rng.uniform(2, 90)),
            lambda n: vehicle(f"v{n}", str(rng.randrange(9)), rng.randrange(5000)),
        ]
        written: list[str] = []
        for _ in range(6):
            batch = [rng.choice(makers)(rng.randrange(40)) for _ in range(25)]
            await _write(store, *{e["id"]: e for e in batch}.values())
            written += [e["id"] for e in batch]
            for entity_id in rng.sample(sorted(set(written)), 3):
                if await store.get(entity_id) is not None:
                    await store.delete(entity_id, CITY_SYSTEM, None)
        feed = hub_engine(services.engine, REGISTRY).feed
        collections = sorted({s.collection for s in REGISTRY.latest()})
        since, pages = 0, 0
        while True:
            page = list(await feed.changes(since, 17))
            expected = [
                (row.seq, row.id, row.type, row.collection, row.city, row.payload, row.received_at)
                for row in await store.changes(since, collections, 17)
            ]
            assert [tuple(change) for change in page] == expected
            if not page:
                break
            since, pages = page[-1].seq, pages + 1
        assert pages > 3
        assert any(change.payload is None for change in await feed.changes(0, 1000))  # tombstones were read
