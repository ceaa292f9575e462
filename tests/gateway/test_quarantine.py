"""Adapters' rejected records kept at the hub: stored once per client, read back by their owner (or an admin)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.gateway.conftest import get_token
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import bearer

__all__ = ["reader", "writer"]  # fixtures
NDJSON = {"Content-Type": "application/x-ndjson"}


def records(count: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "source": "csv",
                "stage": "map",
                "position": {"file": "cases.csv", "line": i + 2},
                "raw": {"Дата": "31.02.2024"},
                "reasons": [{"code": "bad-date", "message": "no such day"}],
            }
        )
        + b"\n"
        for i in range(count)
    )


async def test_upload_is_idempotent_and_private(
    http: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str], register: Any
) -> None:
    first = await http.post("/api/v1/quarantine", content=records(5), headers={**writer, **NDJSON})
    assert first.json() == {"received": 5, "stored": 5, "duplicates": 0}
    again = await http.post("/api/v1/quarantine", content=records(7), headers={**writer, **NDJSON})
    assert again.json() == {"received": 7, "stored": 2, "duplicates": 5}

    mine = (await http.get("/api/v1/quarantine?limit=100", headers=writer)).json()["items"]
    assert len(mine) == 7
    assert mine[0]["record"]["raw"] == {"Дата": "31.02.2024"}
    assert (await http.get("/api/v1/quarantine", headers=reader)).json()["items"] == []
    admin = bearer(await get_token(http, await register(scopes=["admin"], cities=["astana"])))
    assert len((await http.get("/api/v1/quarantine?limit=100", headers=admin)).json()["items"]) == 7


async def test_malformed_lines_store_nothing(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    body = records(2) + b"{not json\n" + b'{"no": "reasons"}\n'
    response = await http.post("/api/v1/quarantine", content=body, headers={**writer, **NDJSON})
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/2", "/3"}
    assert (await http.get("/api/v1/quarantine", headers=writer)).json()["items"] == []
    wrong_type = await http.post(
        "/api/v1/quarantine", content=records(1), headers={**writer, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
