"""The hub serves its open-data catalogue, fed live from the exchange store, without personal data."""

from __future__ import annotations

import httpx
import orjson
from fastapi import FastAPI

from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import service_request

__all__ = ["reader", "writer"]  # fixtures


async def test_published_entities_become_a_live_dataset_without_personal_fields(
    app: FastAPI, http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    body = b"".join(orjson.dumps(service_request(f"OD-{i}", source="iKOMEK-109 Astana")) + b"\n" for i in range(12))
    await http.post("/api/v1/batch", content=body, headers={**writer, "Content-Type": "application/x-ndjson"})
    await app.state.catalogue.refresh()

    names = (await http.get("/api/3/action/package_list")).json()["result"]
    live = [name for name in names if "service-requests" in name and "astana" in name]
    assert live, names
    package = (await http.get(f"/api/3/action/package_show?id={live[0]}")).json()["result"]
    exported = orjson.dumps(package).decode()
    for resource in package["resources"]:
        if resource.get("datastore_active"):
            records = await http.get(f"/api/3/action/datastore_search?resource_id={resource['id']}&limit=100")
            exported += records.text
    assert "iKOMEK-109 Astana" in exported, "lineage names the source system"
    summary = next(s for s in await app.state.catalogue.source.summaries() if s.collection == "service-requests")
    assert summary.publishers == ("Astana Akimat",), "lineage names the member organisation, not its BIN"
    for personal in ("contactPhone", "contactName", "+77015550123", "Сәрсенбаева"):
        assert personal not in exported
    home = await http.get("/", headers={"Accept": "text/html"})
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
