"""A hub database holding a week of three cities' data and the KPIValues the engine computed from it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conformance.serving import serve_app
from gateway.app import create_app
from gateway.audit import AuditLog
from gateway.kpi_feed import hub_engine
from gateway.services import open_services
from gateway.settings import Settings
from gateway.store.entities import EntityStore
from gateway.store.records import Publisher
from schemas import SchemaRegistry
from tests.cityscore.factories import KZ, air, case, payment, vehicle

CITIES = {"astana": 12, "almaty": 9, "shymkent": 5}


def _week() -> list[dict[str, Any]]:
    today = datetime.now(KZ).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for city, size in CITIES.items():
        for back in range(6, -1, -1):
            base = today - timedelta(days=back)
            for n in range(size + back % 3):
                stamp = (base + timedelta(minutes=37 * n)).isoformat()
                for entity in (
                    payment(f"p{back}-{n}", 0, f"{100 + n}.00", city=city),
                    case(f"c{back}-{n}", 0, closed_after=60 * (n + 1), fcr=n % 4 != 0, city=city),
                    air(f"a{back}-{n}", f"s{n % 3}", 0, 20.0 + 4 * n, city=city),
                    vehicle(f"v{back}-{n}", str(n % 5), 0, city=city),
                ):
                    for name in ("dateModified", "dateBooked", "dateObserved", "dateRequested"):
                        if name in entity:
                            entity[name] = stamp
                    if "dateClosed" in entity:
                        entity["dateClosed"] = (base + timedelta(minutes=37 * n + 60 * (n + 1))).isoformat()
                        entity["dateModified"] = entity["dateClosed"]
                    out.append(entity)
    return out


def load_week(database_url: str) -> None:
    registry = SchemaRegistry.load()

    async def load() -> None:
        async with open_services(Settings(database_url=database_url)) as services:
            store = EntityStore(services.engine, AuditLog(services.engine))
            await store.ensure()
            items = [(e, registry.validate(e)) for e in _week()]
            await store.write_many(items, Publisher("qc_city_systems", None))
            engine = hub_engine(services.engine, registry)
            await engine.tick()
            late = payment("late", 0, "42.00")  # a payment for three days ago, arriving now: revises a closed day
            late["dateBooked"] = late["dateModified"] = (datetime.now(KZ) - timedelta(days=3)).isoformat()
            await store.write_many([(late, registry.validate(late))], Publisher("qc_city_systems", None))
            await engine.tick()

    asyncio.run(load())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("cityscore") / "hub.db"
    url = f"sqlite:///{path}"
    load_week(url)
    with serve_app(create_app(Settings(database_url=url))) as base:
        yield base
