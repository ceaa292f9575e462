"""Every export of a catalogue loaded with the bundled examples of all 12 types and hundreds of payments is
scanned: no personal field name or value, no single payment, no unsuppressed small cell, no formula cell."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

import httpx

from catalogue.privacy import AGGREGATED, K_ANONYMITY
from catalogue.source import MemorySource
from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import SITE


def _personal(source: MemorySource, registry: SchemaRegistry) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    values: set[str] = set()
    for version in registry.latest():
        names |= version.personal_fields
    for stored in source._items.values():
        version = registry.get(stored.entity["type"])
        for name in version.personal_fields:
            value = stored.entity.get(name)
            if isinstance(value, str) and len(value) >= 6:
                values.add(value)
    return names, values


def _keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _keys(v)}
    return set()


async def _exports(http: httpx.AsyncClient) -> dict[str, tuple[str, str]]:
    """Every public export: (kind, body) by URL."""
    out: dict[str, tuple[str, str]] = {}

    async def grab(url: str, kind: str, dataset: str = "") -> str:
        response = await http.get(url.removeprefix(SITE))
        assert response.status_code == 200, url
        out[f"{dataset} {url}"] = (kind, response.text)
        return response.text

    names = json.loads(await grab("/api/3/action/package_list", "json"))["result"]
    assert len(names) == 25
    await grab('/api/3/action/package_search?rows=1000&facet.field=["tags","organization"]', "json")
    for name in names:
        dataset = json.loads(await grab(f"/api/3/action/package_show?id={name}", "json"))["result"]
        await grab(f"/dataset/{name}", "html")
        for resource in dataset["resources"]:
            if resource["format"] == "API":
                await grab(
                    f"/api/3/action/datastore_search?resource_id={resource['id']}&limit=32000", "datastore", name
                )
                await grab(f"/api/3/action/datastore_search?resource_id={resource['id']}&records_format=lists", "json")
            else:
                await grab(resource["url"], resource["format"].lower(), name)
    for page in ("/catalog.ttl", "/catalog.jsonld", "/", "/dataset", "/organization/astana"):
        await grab(page, "text")
    return out


def _cells(kind: str, body: str) -> list[dict[str, Any]]:
    if kind == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))]
    if kind == "datastore":
        return list(json.loads(body)["result"]["records"])
    return list(json.loads(body))


async def test_no_export_leaks_personal_data(
    http: httpx.AsyncClient, source: MemorySource, registry: SchemaRegistry
) -> None:
    names, values = _personal(source, registry)
    assert {"payerRef", "contactName", "contactPhone", "contactEmail"} <= names
    assert len(values) > 400  # the generated payers plus the examples' contacts
    exports = await _exports(http)
    assert len(exports) > 100
    for url, (kind, body) in exports.items():
        for name in names:
            assert name not in body, (url, name)
        for value in values:
            assert value not in body, (url, value)
        assert "urn:ngsi-ld:PaymentTransaction:" not in body, url
        if kind in ("json", "datastore", "geojson"):
            assert not names & _keys(json.loads(body)), url


async def test_aggregates_hide_small_cells_in_every_format(http: httpx.AsyncClient) -> None:
    exports = await _exports(http)
    aggregated = {url: item for url, item in exports.items() if url.startswith("payment-transactions")}
    assert len(aggregated) >= 6  # CSV, JSON and datastore for each city
    dims = AGGREGATED["PaymentTransaction"].dimensions
    saw_published = saw_suppressed = False
    for url, (kind, body) in aggregated.items():
        rows = _cells(kind, body)
        assert rows, url
        lines: dict[tuple[str, ...], list[bool]] = defaultdict(list)
        for row in rows:
            count = row["count"]
            hidden = count in (None, "")
            saw_published |= not hidden
            saw_suppressed |= hidden
            if not hidden:
                assert int(count) >= K_ANONYMITY, (url, row)
            else:
                assert row["amount"] in (None, ""), (url, row)
            if row["serviceCategory"] != "all":
                lines[tuple(row[d] for d in dims[:-1])].append(hidden)
        for line, hidden_cells in lines.items():
            total = next(r for r in rows if tuple(r[d] for d in dims[:-1]) == line and r["serviceCategory"] == "all")
            if total["count"] not in (None, ""):
                assert sum(hidden_cells) != 1, (url, line)
    assert saw_published
    assert saw_suppressed


async def test_aggregated_metadata_does_not_reveal_the_record_count(http: httpx.AsyncClient) -> None:
    dataset = (await http.get("/api/3/action/package_show?id=payment-transactions-astana")).json()["result"]
    assert dataset["aggregated"] is True
    assert dataset["freshness"]["records"] is None
    assert {r["format"] for r in dataset["resources"]} == {"CSV", "JSON", "API"}
    assert (
        await http.get("/dataset/payment-transactions-astana/download/payment-transactions-astana.geojson")
    ).status_code == 404


async def test_formula_injection_in_a_live_entity_is_neutralised(
    http: httpx.AsyncClient, source: MemorySource, app: Any
) -> None:
    source.add(
        {
            "id": "urn:ngsi-ld:Incident:astana:evil",
            "type": "Incident",
            "city": "astana",
            "dateModified": "2025-03-01T10:00:00+05:00",
            "source": '=HYPERLINK("http://evil","x")',
            "category": "other",
            "severity": "low",
            "status": "open",
            "dateObserved": "2025-03-01T10:00:00+05:00",
        },
        collection="incidents",
    )
    await app.state.catalogue.refresh()
    body = (await http.get("/dataset/incidents-astana/download/incidents-astana.csv")).text
    cells = [cell for row in csv.reader(io.StringIO(body.lstrip("\ufeff"))) for cell in row]
    assert '\'=HYPERLINK("http://evil","x")' in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
