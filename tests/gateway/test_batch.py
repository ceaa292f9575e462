"""Batch ingest: 10,000 ServiceRequests with bad lines mixed in, read back page by page."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import orjson
import pytest

import gateway.routes.batch as batch_route
from schemas.registry import MODELS_DIR
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import ndjson_results, service_request

__all__ = ["reader", "writer"]  # fixtures
NDJSON = {"Content-Type": "application/x-ndjson"}


def batch_body(count: int, bad_every: int = 97) -> tuple[bytes, dict[int, str]]:
    """``count`` lines; every ``bad_every``-th is broken in one of several ways, returned as index -> reason."""
    lines: list[bytes] = []
    bad: dict[int, str] = {}
    for index in range(count):
        entity = service_request(f"B-{index:05d}")
        if index % bad_every == 5:
            kind = (index // bad_every) % 5
            if kind == 0:
                lines.append(b'{"type": "ServiceRequest", "id": ')  # truncated JSON
                bad[index] = "x-json"
                continue
            if kind == 1:
                entity["dateRequested"] = "12.03.2024 08:15"
                bad[index] = "pattern"
            elif kind == 2:
                entity["city"] = "almaty"
                entity["id"] = entity["id"].replace(":astana:", ":almaty:")
                bad[index] = "x-city"
            elif kind == 3:
                entity["type"] = "Unicorn"
                bad[index] = "x-known-type"
            else:
                lines.append(b"[1, 2, 3]")
                bad[index] = "type"
                continue
        lines.append(orjson.dumps(entity))
    return b"\n".join(lines) + b"\n", bad


async def read_all(http: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = "/api/v1/service-requests?city=astana&limit=1000"
    while next_url:
        page = await http.get(next_url, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        next_url = page.json()["next"]
    return items


async def test_ten_thousand_with_bad_lines(
    http: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    body, bad = batch_body(10_000)
    response = await http.post("/api/v1/batch", content=body, headers={**writer, **NDJSON})
    assert response.status_code == 200
    results = await ndjson_results(response)
    assert [r["index"] for r in results] == list(range(10_000))
    for index, reason in bad.items():
        assert results[index]["status"] == "rejected"
        assert reason in {e["keyword"] for e in results[index]["errors"]}, results[index]
    good = {r["id"] for r in results if r["status"] == "created"}
    assert len(good) == 10_000 - len(bad)

    items = await read_all(http, writer)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "no duplicates"
    assert set(ids) == good, "none missing"
    assert all("contactPhone" in item for item in items)
    for item in await read_all(http, reader):
        assert "contactPhone" not in item

    again = await ndjson_results(await http.post("/api/v1/batch", content=body, headers={**writer, **NDJSON}))
    assert {r["status"] for r in again if r["index"] not in bad} == {"unchanged"}
    assert len(await read_all(http, writer)) == len(good)


async def test_mixed_types_and_scope_per_line(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    device = json.loads(sorted((MODELS_DIR / "Device" / "examples").glob("*.json"))[0].read_text("utf-8"))
    body = orjson.dumps(service_request("MIX-1")) + b"\n" + orjson.dumps(device) + b"\n"
    results = await ndjson_results(await http.post("/api/v1/batch", content=body, headers={**writer, **NDJSON}))
    assert results[0]["status"] == "created"
    assert results[1]["status"] == "rejected"
    assert results[1]["errors"][0]["keyword"] == "x-scope"


async def test_batch_needs_ndjson(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    response = await http.post("/api/v1/batch", json=[service_request("J-1")], headers=writer)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_client_that_goes_away_does_not_cancel_a_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The response is cancelled while a chunk's commit is under way: that commit still completes."""
    monkeypatch.setattr(batch_route, "CHUNK", 2)
    monkeypatch.setattr(batch_route, "_classify", lambda index, raw, registry, caller: ({"id": str(index)}, True))
    log: list[tuple[str, list[str]]] = []

    class SlowCommits(batch_route._BatchWriter):
        def __init__(self) -> None:
            self.registry = self.caller = None  # type: ignore[assignment]  # _classify is replaced

        async def commit(self, chunk: Any, before_commit: Any) -> list[dict[str, Any]]:
            ids = [entity["id"] for _, entity, _ in chunk.valid]
            before_commit()
            try:
                await asyncio.sleep(0.3)  # the database commits
            except asyncio.CancelledError:
                log.append(("cancelled", ids))
                raise
            log.append(("committed", ids))
            return list(chunk.results)

    async def consume() -> None:
        async for _ in SlowCommits().results(io.BytesIO(b"{}\n" * 6)):
            log.append(("sent", []))

    response = asyncio.create_task(consume())
    await asyncio.sleep(0.1)  # the first chunk is committing, the second validated
    response.cancel()  # as Starlette does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await response
    await asyncio.sleep(0.4)
    assert log == [("committed", ["0", "1"])]
