"""Live datasets follow the hub's store: appear, change, disappear; freshness and lineage are measured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from catalogue.errors import NotFound
from catalogue.service import Catalogue, CatalogueSettings
from catalogue.source import CollectionSummary, MemorySource
from gateway.db import make_engine
from schemas.registry import SchemaRegistry


def _air(local_id: str, modified: datetime) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:shymkent:{local_id}",
        "type": "AirQualityObserved",
        "city": "shymkent",
        "dateModified": modified.isoformat(),
        "dateObserved": modified.isoformat(),
        "source": "Shymkent eco-monitoring",
        "location": {"type": "Point", "coordinates": [69.59, 42.34]},
        "pm25": 31.0,
    }


async def test_a_new_pair_becomes_a_dataset_with_freshness_and_lineage(
    catalogue: Catalogue, source: MemorySource
) -> None:
    observed = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    source.add(
        _air("s1", observed),
        collection="air-quality-observed",
        publisher="Shymkent akimat",
        received=observed + timedelta(seconds=40),
    )
    source.add(
        _air("s2", observed),
        collection="air-quality-observed",
        publisher="Shymkent akimat",
        received=observed + timedelta(seconds=20),
    )
    assert await catalogue.refresh() == 1
    doc = await catalogue.package_show("air-quality-observed-shymkent")
    assert doc["title_translated"]["kk"] == "Ауа сапасы — Шымкент"
    assert doc["organization"]["name"] == "shymkent"
    assert doc["freshness"]["median_latency_seconds"] == 30.0
    assert doc["freshness"]["records"] == 2
    assert doc["freshness"]["last_update"] == (observed + timedelta(seconds=40)).isoformat()
    assert doc["lineage"] == {"publishers": ["Shymkent akimat"], "sources": ["Shymkent eco-monitoring"]}
    assert {r["format"] for r in doc["resources"]} == {"CSV", "JSON", "GeoJSON", "API"}
    assert await catalogue.refresh() == 0  # nothing changed, nothing rewritten
    source.remove("urn:ngsi-ld:AirQualityObserved:shymkent:s1")
    source.remove("urn:ngsi-ld:AirQualityObserved:shymkent:s2")
    assert await catalogue.refresh() == 1
    assert "air-quality-observed-shymkent" not in await catalogue.package_list()


async def test_downloads_stream_the_current_entities(
    http: httpx.AsyncClient, source: MemorySource, catalogue: Catalogue
) -> None:
    name = "air-quality-observed-astana"
    before = (await http.get(f"/dataset/{name}/download/{name}.json")).json()
    source.add(
        {**before[0], "id": "urn:ngsi-ld:AirQualityObserved:astana:new", "pm25": 99.5},
        collection="air-quality-observed",
    )
    after = (await http.get(f"/dataset/{name}/download/{name}.json")).json()
    assert len(after) == len(before) + 1
    geo = (await http.get(f"/dataset/{name}/download/{name}.geojson")).json()
    assert len(geo["features"]) == len(after)
    csv_response = await http.get(f"/dataset/{name}/download/{name}.csv")
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.text.lstrip("\ufeff").splitlines()[0].startswith("id,type,city,dateModified")
    assert (await http.get(f"/dataset/{name}/download/other.csv")).status_code == 404
    assert (await http.get(f"/dataset/{name}/download/{name}.xml")).status_code == 404


async def test_datastore_search_filters_sorts_and_pages(http: httpx.AsyncClient, catalogue: Catalogue) -> None:
    doc = await catalogue.package_show("meter-readings-astana")
    api = next(r for r in doc["resources"] if r["format"] == "API")
    url = "/api/3/action/datastore_search"
    everything = (await http.post(url, json={"resource_id": api["id"]})).json()["result"]
    assert everything["total"] == len(everything["records"]) >= 2
    assert "next_page" not in everything
    first = (await http.post(url, json={"resource_id": api["id"], "limit": 1, "sort": "id desc"})).json()["result"]
    assert first["records"][0]["id"] == max(r["id"] for r in everything["records"])
    assert first["next_page"].endswith("offset=1")
    meter_type = everything["records"][0]["meterType"]
    filtered = (
        await http.post(
            url, json={"resource_id": api["id"], "filters": {"meterType": meter_type}, "fields": ["id", "meterType"]}
        )
    ).json()["result"]
    assert {r["meterType"] for r in filtered["records"]} == {meter_type}
    assert [f["id"] for f in filtered["fields"]] == ["_id", "id", "meterType"]
    bad = (await http.post(url, json={"resource_id": api["id"], "fields": ["payerRef"]})).json()
    assert bad["error"]["__type"] == "Validation Error"


async def test_data_arriving_is_described_without_waiting_for_the_timer(
    database_url: str, source: MemorySource
) -> None:
    engine = make_engine(database_url)
    settings = CatalogueSettings(refresh_seconds=3600, poll_seconds=0.05)  # the timer alone would take an hour
    try:
        async with Catalogue(engine, source, SchemaRegistry.load(), settings, create_tables=True) as catalogue:
            source.add(_air("late", datetime(2025, 3, 1, 9, 0, tzinfo=UTC)), collection="air-quality-observed")
            for _ in range(100):
                try:
                    await catalogue.package_show("air-quality-observed-shymkent")
                    break
                except NotFound:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the new dataset was not described within 5 s")
    finally:
        await engine.dispose()


class _SlowMovingSource(MemorySource):
    """A source that is always written to and whose summaries take 50 ms: a large store under steady writes."""

    calls: int = 0

    async def version(self) -> int:
        self._version += 1
        return self._version

    async def summaries(self) -> list[CollectionSummary]:
        self.calls += 1
        await asyncio.sleep(0.05)
        return await super().summaries()


async def test_refreshes_take_at_most_their_share_of_the_time(database_url: str) -> None:
    """With data arriving all the time, a refresh costing d waits d / refresh_share before the next one."""
    engine = make_engine(database_url)
    try:
        counts = []
        for share in (1.0, 0.1):
            source = _SlowMovingSource()
            settings = CatalogueSettings(refresh_seconds=3600, poll_seconds=0.01, refresh_share=share)
            async with Catalogue(engine, source, SchemaRegistry.load(), settings, create_tables=True):
                await asyncio.sleep(1.2)
            counts.append(source.calls)
        unbounded, bounded = counts
        assert unbounded >= 10  # one after another, ~60 ms apart
        assert 2 <= bounded <= 4  # open's, the loop's first, then one every >= 0.5 s (>= 50 ms / 0.1)
    finally:
        await engine.dispose()
