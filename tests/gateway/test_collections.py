"""The collections API end to end: real app, real tokens, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import service_request

__all__ = ["reader", "writer"]  # fixtures


def url(entity_id: str) -> str:
    return f"/api/v1/service-requests/{quote(entity_id, safe='')}"


async def test_create_read_update_delete(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    entity = service_request("CRUD-1")
    created = await http.post("/api/v1/service-requests", json=entity, headers=writer)
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(url(entity["id"]))
    assert created.headers["etag"] == '"1"'
    again = await http.post("/api/v1/service-requests", json=entity, headers=writer)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    got = await http.get(url(entity["id"]), headers=writer)
    assert got.status_code == 200
    assert got.json() == entity
    not_modified = await http.get(url(entity["id"]), headers={**writer, "If-None-Match": '"1"'})
    assert not_modified.status_code == 304

    changed = {**entity, "status": "closed", "statusDetail": "resolved", "dateClosed": "2024-03-14T10:00:00+05:00"}
    stale = await http.put(url(entity["id"]), json=changed, headers={**writer, "If-Match": '"7"'})
    assert stale.status_code == 412
    replaced = await http.put(url(entity["id"]), json=changed, headers={**writer, "If-Match": '"1"'})
    assert replaced.status_code == 200
    assert replaced.headers["etag"] == '"2"'
    same = await http.put(url(entity["id"]), json=changed, headers=writer)
    assert same.headers["etag"] == '"2"', "an identical PUT is idempotent"

    deleted = await http.delete(url(entity["id"]), headers={**writer, "If-Match": '"2"'})
    assert deleted.status_code == 204
    assert (await http.get(url(entity["id"]), headers=writer)).status_code == 404
    recreated = await http.put(url(entity["id"]), json=entity, headers=writer)
    assert recreated.status_code == 201


async def test_personal_fields_need_read_personal(
    http: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    entity = service_request("PII-1")
    assert (await http.post("/api/v1/service-requests", json=entity, headers=writer)).status_code == 201
    single = (await http.get(url(entity["id"]), headers=reader)).json()
    listed = (await http.get("/api/v1/service-requests", headers=reader)).json()["items"]
    for seen in (single, *listed):
        assert "contactPhone" not in seen
        assert "contactName" not in seen
    assert (await http.get(url(entity["id"]), headers=writer)).json()["contactPhone"] == entity["contactPhone"]


async def test_writes_are_limited_to_the_client_s_cities_and_scopes(
    http: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    almaty = service_request("CITY-1", city="almaty")
    refused = await http.post("/api/v1/service-requests", json=almaty, headers=writer)
    assert refused.status_code == 403
    assert refused.json()["type"] == "https://qala.kz/problems/city-not-allowed"
    no_scope = await http.post("/api/v1/service-requests", json=service_request("S-1"), headers=reader)
    assert no_scope.status_code == 403
    assert no_scope.json()["type"] == "https://qala.kz/problems/insufficient-scope"


async def test_invalid_entity_is_422_with_every_pointer(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    entity = service_request("BAD-1", contactPhone="8 701", channel="pigeon")
    del entity["dateRequested"]
    response = await http.post("/api/v1/service-requests", json=entity, headers=writer)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "https://qala.kz/problems/validation-failed"
    pointers = {(e["pointer"], e["keyword"]) for e in problem["errors"]}
    assert {("/contactPhone", "pattern"), ("/channel", "enum"), ("/dateRequested", "required")} <= pointers


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "slug"),
    [
        ("POST", "/api/v1/service-requests", b"{not json", {"Content-Type": "application/json"}, 400, "bad-request"),
        ("POST", "/api/v1/service-requests", b"[1,2]", {"Content-Type": "application/json"}, 400, "bad-request"),
        ("POST", "/api/v1/service-requests", b"x", {"Content-Type": "text/plain"}, 415, "unsupported-media-type"),
        ("GET", "/api/v1/unicorns", None, {}, 404, "not-found"),
        ("GET", "/api/v1/service-requests?limit=100000", None, {}, 400, "bad-request"),
        ("GET", "/api/v1/service-requests?limit=ten", None, {}, 400, "bad-request"),
        ("GET", "/api/v1/service-requests?cursor=abc.def", None, {}, 400, "bad-request"),
        ("GET", "/api/v1/service-requests?stauts=open", None, {}, 400, "bad-request"),
        ("GET", "/api/v1/service-requests?bbox=1,2,3", None, {}, 400, "bad-request"),
        ("GET", "/api/v1/service-requests?updatedSince=2024-03-01T00:00:00", None, {}, 400, "bad-request"),
        ("DELETE", "/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:none", None, {}, 404, "not-found"),
    ],
)
async def test_bad_requests_get_problem_details_never_500(
    http: httpx.AsyncClient,
    writer: dict[str, str],
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    slug: str,
) -> None:
    response = await http.request(method, path, content=body, headers={**writer, **headers})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"https://qala.kz/problems/{slug}"


async def test_id_in_body_must_match_path_and_type_must_match_collection(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    entity = service_request("ID-1")
    mismatch = await http.put(url("urn:ngsi-ld:ServiceRequest:astana:OTHER"), json=entity, headers=writer)
    assert mismatch.status_code == 400
    disagreeing = service_request("ID-2")
    disagreeing["id"] = "urn:ngsi-ld:ServiceRequest:almaty:ID-2"
    response = await http.post("/api/v1/service-requests", json=disagreeing, headers=writer)
    assert response.status_code == 422
    assert ("/id", "x-id-agreement") in {(e["pointer"], e["keyword"]) for e in response.json()["errors"]}


async def test_tampered_cursor_is_refused(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    for index in range(3):
        await http.post("/api/v1/service-requests", json=service_request(f"CUR-{index}"), headers=writer)
    first = (await http.get("/api/v1/service-requests?limit=1", headers=writer)).json()
    cursor = first["next"].split("cursor=")[1]
    body, tag = cursor.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + tag
    response = await http.get(f"/api/v1/service-requests?limit=1&cursor={forged}", headers=writer)
    assert response.status_code == 400
    other_query = await http.get(f"/api/v1/service-requests?limit=1&status=open&cursor={cursor}", headers=writer)
    assert other_query.status_code == 400


async def test_filters_and_pages(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    expected: set[str] = set()
    for index in range(25):
        status = "open" if index % 3 else "closed"
        extra: dict[str, Any] = {"status": status, "statusDetail": "received" if status == "open" else "resolved"}
        if status == "closed":
            extra["dateClosed"] = "2024-03-14T10:00:00+05:00"
        if index < 5:
            extra["location"] = {"type": "Point", "coordinates": [71.40 + index / 1000, 51.13]}
        else:
            extra["location"] = {"type": "Point", "coordinates": [71.50, 51.20]}
        extra["dateModified"] = f"2024-03-{10 + index % 10:02d}T09:00:00+05:00"
        entity = service_request(f"F-{index:02d}", **extra)
        assert (await http.post("/api/v1/service-requests", json=entity, headers=writer)).status_code == 201
        if status == "open":
            expected.add(entity["id"])
    seen: list[str] = []
    next_url: str | None = "/api/v1/service-requests?status=open&limit=4"
    while next_url:
        page = (await http.get(next_url, headers=writer)).json()
        assert len(page["items"]) <= 4
        seen += [item["id"] for item in page["items"]]
        next_url = page["next"]
    assert sorted(seen) == sorted(expected), "every open request exactly once"
    boxed = (await http.get("/api/v1/service-requests?bbox=71.39,51.12,71.41,51.14", headers=writer)).json()
    assert {i["id"].rsplit(":", 1)[1] for i in boxed["items"]} == {
        f"F-{i:02d}" for i in range(5) if i < 5 and 71.40 + i / 1000 <= 71.41
    }
    since = (await http.get("/api/v1/service-requests?updatedSince=2024-03-19T09:00:00%2B05:00", headers=writer)).json()
    assert {i["dateModified"] for i in since["items"]} == {"2024-03-19T09:00:00+05:00"}


async def test_concurrent_writes_keep_their_own_outcomes(http: httpx.AsyncClient, writer: dict[str, str]) -> None:
    """Single writes are group-committed; each request still gets exactly its own answer."""
    distinct = await asyncio.gather(
        *(http.post("/api/v1/service-requests", json=service_request(f"G-{i}"), headers=writer) for i in range(40))
    )
    assert [r.status_code for r in distinct] == [201] * 40
    same = service_request("G-SAME")
    racing = await asyncio.gather(*(http.post("/api/v1/service-requests", json=same, headers=writer) for _ in range(8)))
    assert sorted(r.status_code for r in racing) == [201] + [409] * 7
    changed = {**same, "description": "Повторная заявка."}
    puts = await asyncio.gather(
        *(http.put(url(same["id"]), json=changed, headers={**writer, "If-Match": '"1"'}) for _ in range(6))
    )
    assert sorted(r.status_code for r in puts) == [200] + [412] * 5, "If-Match admits only the first"
    assert (await http.get(url(same["id"]), headers=writer)).headers["etag"] == '"2"'
    listed = (await http.get("/api/v1/service-requests?limit=1000", headers=writer)).json()["items"]
    assert len(listed) == 41
