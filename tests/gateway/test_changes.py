"""The change feed: commit order, resumable cursors, tombstones, redaction, scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson

from tests.gateway.conftest import get_token
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import bearer, service_request

__all__ = ["reader", "writer"]  # fixtures


async def drain(http: httpx.AsyncClient, headers: dict[str, str], url: str) -> tuple[list[dict[str, Any]], str]:
    changes: list[dict[str, Any]] = []
    cursor = ""
    next_url: str | None = url
    while next_url:
        page = (await http.get(next_url, headers=headers)).json()
        changes += page["changes"]
        cursor = page["cursor"]
        next_url = page["next"]
    return changes, cursor


async def test_feed_resumes_in_commit_order_with_tombstones(
    http: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    body = b"".join(orjson.dumps(service_request(f"CH-{i}")) + b"\n" for i in range(7))
    await http.post("/api/v1/batch", content=body, headers={**writer, "Content-Type": "application/x-ndjson"})
    first, cursor = await drain(http, writer, "/api/v1/changes?limit=3")
    assert [c["id"].rsplit(":", 1)[1] for c in first] == [f"CH-{i}" for i in range(7)]
    seqs = [c["seq"] for c in first]
    assert seqs == sorted(seqs)

    gone = service_request("CH-2")["id"]
    assert (await http.delete(f"/api/v1/service-requests/{quote(gone, safe='')}", headers=writer)).status_code == 204
    changed = service_request("CH-4", description="Updated after inspection.")
    await http.put(f"/api/v1/service-requests/{quote(changed['id'], safe='')}", json=changed, headers=writer)

    resumed = (await http.get(f"/api/v1/changes?since={cursor}", headers=writer)).json()["changes"]
    assert [(c["id"], c["op"]) for c in resumed] == [(gone, "delete"), (changed["id"], "upsert")]
    assert resumed[0]["entity"] is None
    assert resumed[1]["entity"]["description"] == "Updated after inspection."

    as_reader, _ = await drain(http, reader, "/api/v1/changes")
    assert all("contactPhone" not in (c["entity"] or {}) for c in as_reader)
    assert "contactPhone" in resumed[1]["entity"], "the writer holds read-personal"


async def test_feed_only_covers_readable_types(http: httpx.AsyncClient, register: Any) -> None:
    device_reader = bearer(await get_token(http, await register(scopes=["devices:read"], cities=["astana"])))
    response = await http.get("/api/v1/changes?types=ServiceRequest", headers=device_reader)
    assert response.status_code == 403
    assert response.json()["type"] == "https://qala.kz/problems/insufficient-scope"
    unknown = await http.get("/api/v1/changes?types=Unicorn", headers=device_reader)
    assert unknown.status_code == 400
    tampered = await http.get("/api/v1/changes?since=eyJrIjoiNSJ9.AAAA", headers=device_reader)
    assert tampered.status_code == 400
