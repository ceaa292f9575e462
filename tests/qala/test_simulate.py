"""``qala simulate``: deterministic cities with their own characters, and a short run against a real hub whose
KPIs must equal an independent recomputation from the public change feed."""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from conformance.serving import serve_app
from gateway.app import create_app
from gateway.clients import ALL_CITIES
from gateway.settings import Settings
from qala.simcity import CHARACTERS, CitySim
from qala.simulate import build
from schemas import SchemaRegistry
from tests.gateway.serving import free_port, register_client
from tests.qala.recompute_kpis import differences, read_feed

START = 1_796_000_000.0  # 2026-12-01 in Kazakhstan


def _steps(city: str, seed: int, count: int = 300) -> list[object]:
    sim = CitySim(CHARACTERS[city], seed=seed, start=START)
    return [sim.backlog, *(sim.step(i) for i in range(count))]


def test_same_seed_same_city_other_seed_other_city() -> None:
    assert _steps("astana", 7) == _steps("astana", 7)
    assert _steps("astana", 7) != _steps("astana", 8)


def test_every_entity_the_simulator_makes_is_valid() -> None:
    registry = SchemaRegistry.load()
    for city in CHARACTERS:
        sim = CitySim(CHARACTERS[city], seed=3, start=START, rate=5)
        for entity in sim.backlog:
            registry.validate(entity)
        for index in range(200):
            step = sim.step(index)
            for entity in step.cases + step.payments + step.air:
                registry.validate(entity)


def test_cities_have_their_own_character() -> None:
    def pm25(city: str) -> float:
        sim = CitySim(CHARACTERS[city], seed=1, start=START, rate=10)
        return statistics.mean(e["pm25"] for i in range(600) for e in sim.step(i).air)

    assert pm25("almaty") > pm25("shymkent") > pm25("astana")
    shymkent = CitySim(CHARACTERS["shymkent"], seed=1, start=START, rate=10)
    late = [e for i in range(600) for e in shymkent.step(i).air if e["dateObserved"] < "2026-12-01"]
    assert late  # a station uploading yesterday's readings: the late data that revises a closed day
    astana = CitySim(CHARACTERS["astana"], seed=1, start=START, rate=10)
    assert sum(len(astana.step(i).payments) for i in range(600)) > sum(
        len(shymkent.step(i).payments) for i in range(600)
    )


def test_a_short_run_gives_kpis_equal_to_an_independent_recomputation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    scopes = ["admin"] + [f"{s.collection}:read" for s in SchemaRegistry.load().latest()]
    admin_id, admin_secret = register_client(url, scopes, [ALL_CITIES])
    port = free_port()  # the feed's next links are built on the configured public URL, so it names this hub
    issuer = f"http://127.0.0.1:{port}"
    settings = Settings(env="demo", database_url=url, kpi_interval_seconds=1.0, issuer=issuer)
    with serve_app(create_app(settings), port=port) as hub:
        simulation = build(
            hub,
            admin_id,
            admin_secret,
            seed=5,
            rate=20,
            cities=list(CHARACTERS),
            work=tmp_path / "work",
            mqtt_url="mqtt://127.0.0.1:1883",
        )
        counts = simulation.run(steps=20)
        for city in CHARACTERS:
            for system in ("contact-centre", "settlement", "air", "transport", "meters"):
                assert counts[city, system, "created"] + counts[city, system, "updated"] > 0, (city, system)
        found: list[str] = ["never compared"]
        deadline = time.monotonic() + 60
        while found and time.monotonic() < deadline:
            time.sleep(2)  # the hub's engine runs every second; give it time to catch up with the feed
            changes = read_feed(hub, admin_id, admin_secret)
            found = differences(changes)
        assert found == []
        kpis = [c["entity"] for c in changes if c["type"] == "KPIValue"]
        today = datetime.now(ZoneInfo("Asia/Almaty")).date().isoformat()
        latency = [
            k
            for k in kpis
            if k["kpiCode"] == "data.latency-median" and k["periodStart"] == today and k["period"] == "day"
        ]
        assert {k["city"] for k in latency} == set(CHARACTERS)
        assert all(0 <= k["value"] < 3600 for k in latency), latency  # seconds or minutes, never days
        scores = [k for k in kpis if k["kpiCode"] == "cityscore" and k["period"] == "day"]
        assert {k["city"] for k in scores} >= set(CHARACTERS)
        wanted = {f"kpi-values-{city}" for city in CHARACTERS}
        names: set[str] = set()
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=hub) as http:  # the KPIs are open data like any other dataset
            while not wanted <= names and time.monotonic() < deadline:
                names = set(http.get("/api/3/action/package_list").json()["result"])
                time.sleep(2)  # the catalogue re-describes its live datasets every 30 s
        assert wanted <= names
