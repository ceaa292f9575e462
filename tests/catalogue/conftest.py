"""Fixtures for the catalogue: the real app in process or behind a real uvicorn server, on SQLite and
PostgreSQL, fed by a MemorySource holding every bundled example entity plus generated payments."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from catalogue.app import create_app
from catalogue.cli import example_source
from catalogue.service import Catalogue, CatalogueSettings
from catalogue.source import MemorySource
from gateway.db import make_engine
from schemas.registry import SchemaRegistry
from tests.gateway.serving import free_port

SITE = "http://catalogue.test"
DISTRICTS = ("Есильский", "Алматинский", "Сарыаркинский", "Байконурский")
CATEGORIES = ("heat", "water", "electricity", "parking", "public-transport")


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load()


def generated_payments(count: int, seed: int = 7, city: str = "astana") -> list[dict[str, Any]]:
    """Payments skewed so that some district x day x category cells are large and many are small."""
    rng = random.Random(seed)
    out = []
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    for n in range(count):
        district = rng.choices(DISTRICTS, weights=(8, 4, 2, 1))[0]
        category = rng.choices(CATEGORIES, weights=(10, 6, 3, 1, 1))[0]
        booked = start + timedelta(days=rng.choice((0, 0, 1, 2)), minutes=rng.randrange(600))
        out.append(
            {
                "id": f"urn:ngsi-ld:PaymentTransaction:{city}:GEN-{seed}-{n:05d}",
                "type": "PaymentTransaction",
                "city": city,
                "dateModified": booked.isoformat(),
                "source": "Astana ERC (unified settlement centre)",
                "amount": f"{rng.randrange(100, 90000)}.{rng.randrange(100):02d}",
                "currency": "KZT",
                "status": "ACSC",
                "serviceCategory": category,
                "channel": "mobile-app",
                "payerType": "individual",
                "payerRef": f"{rng.getrandbits(256):064x}"[:43].replace("f", "_"),
                "district": district,
                "dateInitiated": booked.isoformat(),
                "dateBooked": booked.isoformat(),
            }
        )
    return out


def loaded_source(registry: SchemaRegistry, payments: int = 400) -> MemorySource:
    source = example_source(registry)
    for entity in generated_payments(payments):
        source.add(entity, collection="payment-transactions", publisher="Astana ERC")
    return source


@pytest.fixture
def source(registry: SchemaRegistry) -> MemorySource:
    return loaded_source(registry)


def settings(site: str = SITE) -> CatalogueSettings:
    return CatalogueSettings(site_url=site, refresh_seconds=0)


@pytest.fixture
async def app(database_url: str, source: MemorySource, registry: SchemaRegistry) -> AsyncIterator[FastAPI]:
    application = create_app(make_engine(database_url), source, registry, settings())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def catalogue(app: FastAPI) -> Catalogue:
    found: Catalogue = app.state.catalogue
    return found


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE) as client:
        yield client


@pytest.fixture
async def token(catalogue: Catalogue) -> str:
    return await catalogue.store.create_token("tests")


@dataclass
class Served:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(database_url: str, source: MemorySource, registry: SchemaRegistry) -> Served:
    """A real uvicorn server on a free loopback port, in a thread, with the catalogue's lifespan."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    application = create_app(make_engine(database_url), source, registry, settings(url))
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the catalogue server did not start")
        time.sleep(0.02)
    return Served(url, application, server, thread)


@pytest.fixture
def served(database_url: str, source: MemorySource, registry: SchemaRegistry) -> Iterator[Served]:
    running = serve(database_url, source, registry)
    yield running
    running.stop()
