"""Input hardening (issue 15, part 3): NUL bytes, deep nesting and huge integers are 4xx, never 500, on both
engines; a batch line that breaks a check is that line's result and the good lines are kept."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

import gateway.routes.batch as batch_route
from gateway.store.entities import EntityStore
from tests.gateway.conftest import get_token
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import bearer, ndjson_results, service_request

__all__ = ["reader", "writer"]  # fixtures
NDJSON = {"Content-Type": "application/x-ndjson"}
DEEP = b"[" * 1000 + b"]" * 1000


def is_problem(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_nul_in_the_token_endpoint_form_is_invalid_request(http: httpx.AsyncClient, register: Any) -> None:
    who = await register()
    response = await http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=service-requests%3Aread%00",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(who.client_id, who.secret),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    response = await http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&client_id=qc_%00x&client_secret=s",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/service-requests?city=astana%00",
        "/api/v1/service-requests?status%00=open",
        "/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:a%00b",
        "/api/3/action/package_search?q=air%00",
        "/api/3/action/package_show?id=x%00",
        "/dataset?q=%00",
    ],
)
async def test_nul_in_query_or_path_is_a_400_problem(
    http: httpx.AsyncClient, reader: dict[str, str], path: str
) -> None:
    is_problem(await http.get(path, headers=reader))


async def test_nul_or_deep_nesting_in_a_json_body_is_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    entity = service_request("NUL-1", description="pothole\u0000")
    response = await http.post("/api/v1/service-requests", json=entity, headers=writer)
    is_problem(response)
    assert "/description" in response.json()["detail"]
    deep = service_request("DEEP-1")
    body = orjson.dumps(deep)[:-1] + b',"extra":' + b"[" * 100 + b"]" * 100 + b"}"
    headers = {**writer, "Content-Type": "application/json"}
    is_problem(await http.post("/api/v1/service-requests", content=body, headers=headers))
    is_problem(await http.post("/api/v1/service-requests", content=DEEP, headers=headers))
    for local in ("NUL-1", "DEEP-1"):
        found = await http.get(f"/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:{local}", headers=writer)
        assert found.status_code == 404


async def test_ckan_actions_refuse_nul_and_non_string_q(http: httpx.AsyncClient) -> None:
    is_problem(await http.post("/api/3/action/package_search", json={"q": "air\u0000"}))
    for q in ({"a": 1}, [1, 2], 7, True):
        response = await http.post("/api/3/action/package_search", json={"q": q})
        assert 400 <= response.status_code < 500, (q, response.text)
        assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/api/3/action/package_search", {"start": str(10**20)}),
        ("/api/3/action/package_search", {"rows": str(2**63)}),
        ("/api/3/action/organization_list", {"offset": str(10**20)}),
        ("/api/3/action/organization_list", {"limit": str(2**64)}),
        ("/api/3/action/datastore_search", {"resource_id": "x", "offset": str(10**20)}),
        ("/api/3/action/datastore_search", {"resource_id": "x", "limit": str(2**63)}),
    ],
)
async def test_huge_integers_in_ckan_actions_are_4xx(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> None:
    response = await http.get(path, params=data)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "path",
    [
        f"/catalog.jsonld?page={2**63}",
        f"/dataset?page={2**63}",
        f"/api/v1/admin/audit?after={2**63}",
        f"/api/v1/quarantine?after={10**20}",
    ],
)
async def test_huge_integers_in_pages_and_feeds_are_4xx(http: httpx.AsyncClient, register: Any, path: str) -> None:
    admin = bearer(await get_token(http, await register(scopes=["admin", "service-requests:read"]), None))
    response = await http.get(path, headers=admin)
    assert response.status_code < 500, response.text
    if "page=" in path and path.startswith("/dataset"):
        assert response.status_code in (200, 400)  # an HTML page may clamp to its last page instead
    else:
        assert 400 <= response.status_code < 500, response.text


async def test_a_batch_line_nested_1000_deep_or_with_nul_is_only_that_lines_result(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    good = [orjson.dumps(service_request(f"G-{n}")) for n in range(3)]
    nul = orjson.dumps(service_request("N-1", description="a\u0000b"))
    deep_entity = b'{"type":"ServiceRequest","id":"urn:ngsi-ld:ServiceRequest:astana:D-1","x":' + DEEP + b"}"
    body = b"\n".join([good[0], DEEP, good[1], deep_entity, nul, good[2]]) + b"\n"
    response = await http.post("/api/v1/batch", content=body, headers={**writer, **NDJSON})
    assert response.status_code == 200
    results = await ndjson_results(response)
    assert [r["status"] for r in results] == ["created", "rejected", "created", "rejected", "rejected", "created"]
    assert {r["errors"][0]["keyword"] for r in results if r["status"] == "rejected"} <= {"x-input", "x-json"}
    for n in range(3):
        found = await http.get(f"/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:G-{n}", headers=writer)
        assert found.status_code == 200


async def test_a_line_whose_check_raises_is_rejected_and_the_others_are_kept(
    http: httpx.AsyncClient, writer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = batch_route.check_line

    def flaky(index: int, raw: bytes, *args: Any) -> Any:
        if b"BOOM" in raw:
            raise RecursionError("maximum recursion depth exceeded")
        return original(index, raw, *args)

    monkeypatch.setattr(batch_route, "check_line", flaky)
    lines = [orjson.dumps(service_request(name)) for name in ("K-1", "BOOM", "K-2")]
    response = await http.post("/api/v1/batch", content=b"\n".join(lines), headers={**writer, **NDJSON})
    results = await ndjson_results(response)
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["errors"][0]["keyword"] == "x-internal"


async def test_a_chunk_that_fails_to_commit_keeps_its_good_lines(
    http: httpx.AsyncClient, writer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = EntityStore.write_many

    async def picky(self: EntityStore, items: Any, *args: Any, **kwargs: Any) -> Any:
        if any(entity["id"].endswith(":BAD") for entity, _ in items):
            raise RuntimeError("the database refused a value")
        return await original(self, items, *args, **kwargs)

    monkeypatch.setattr(EntityStore, "write_many", picky)
    lines = [orjson.dumps(service_request(name)) for name in ("C-1", "BAD", "C-2")]
    response = await http.post("/api/v1/batch", content=b"\n".join(lines), headers={**writer, **NDJSON})
    results = await ndjson_results(response)
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["errors"][0]["keyword"] == "x-store"


async def test_quarantine_lines_with_nul_or_deep_nesting_are_a_422_not_a_500(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    headers = writer | NDJSON
    nul = b'{"reasons": ["x"], "record": {"name": "a\\u0000b"}}'
    deep = b'{"reasons": ["x"], "record": ' + b"[" * 200 + b"]" * 200 + b"}"
    for line in (nul, deep):
        response = await http.post("/api/v1/quarantine", content=line, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["keyword"] == "x-input"
    good = await http.post("/api/v1/quarantine", content=b'{"reasons": ["x"], "record": {"n": 1}}', headers=headers)
    assert good.status_code == 200, good.text


async def test_a_ckan_json_body_sent_as_another_media_type_is_checked_too(http: httpx.AsyncClient) -> None:
    for content_type in ("text/plain", ""):
        response = await http.post(
            "/api/3/action/package_search",
            content=b'{"q": "air\\u0000"}',
            headers={"Content-Type": content_type} if content_type else {},
        )
        assert response.status_code == 400, response.text
