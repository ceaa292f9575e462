"""Personal data (issue 15, part 4): a blind writer cannot erase it; PATCH; personal reads only in own cities;
``--read-city`` narrows reads."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from gateway.services import Services
from gateway.store.entities import EntityStore, EntityText
from tests.gateway.conftest import MEMBER_BIN, get_token
from tests.gateway.exchange_app import writer
from tests.gateway.exchange_fixtures import bearer, ndjson_results, service_request

__all__ = ["writer"]  # fixtures
SR = "/api/v1/service-requests/"
PERSONAL = ("contactName", "contactPhone")
BLIND_SCOPES = ["service-requests:read", "service-requests:write"]
MERGE = {"Content-Type": "application/merge-patch+json"}
CLOSE = b'{"status": "closed", "dateClosed": "2024-03-14T10:00:00+05:00"}'


@pytest.fixture
async def blind(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    """A writer for Astana without read-personal."""
    return bearer(await get_token(http, await register(scopes=BLIND_SCOPES, cities=["astana"])))


async def stored(http: httpx.AsyncClient, writer: dict[str, str], local: str) -> dict[str, Any]:
    response = await http.get(SR + f"urn:ngsi-ld:ServiceRequest:astana:{local}", headers=writer)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_writer_without_read_personal_that_puts_back_what_it_read_keeps_personal_fields(
    http: httpx.AsyncClient, writer: dict[str, str], blind: dict[str, str]
) -> None:
    entity = service_request("P-1")
    assert (await http.post("/api/v1/service-requests", json=entity, headers=writer)).status_code == 201
    read = (await http.get(SR + entity["id"], headers=blind)).json()
    assert not set(PERSONAL) & set(read)
    read["statusDetail"] = "in_progress"
    put = await http.put(SR + entity["id"], json=read, headers=blind)
    assert put.status_code == 200, put.text
    assert not set(PERSONAL) & set(put.json())  # still not shown to it
    now = await stored(http, writer, "P-1")
    assert now["statusDetail"] == "in_progress"
    assert [now[f] for f in PERSONAL] == [entity[f] for f in PERSONAL]


async def test_a_writer_that_reads_personal_fields_may_remove_them_with_put(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    entity = service_request("P-2")
    await http.post("/api/v1/service-requests", json=entity, headers=writer)
    without = {k: v for k, v in entity.items() if k not in PERSONAL}
    assert (await http.put(SR + entity["id"], json=without, headers=writer)).status_code == 200
    assert not set(PERSONAL) & set(await stored(http, writer, "P-2"))


async def test_a_blind_batch_resend_keeps_personal_fields(
    http: httpx.AsyncClient, writer: dict[str, str], blind: dict[str, str]
) -> None:
    entities = [service_request(f"PB-{n}") for n in range(3)]
    for entity in entities:
        await http.post("/api/v1/service-requests", json=entity, headers=writer)
    redacted = [{k: v for k, v in e.items() if k not in PERSONAL} | {"statusDetail": "in_progress"} for e in entities]
    body = b"\n".join(orjson.dumps(e) for e in redacted)
    response = await http.post("/api/v1/batch", content=body, headers=blind | {"Content-Type": "application/x-ndjson"})
    results = await ndjson_results(response)
    assert [r["status"] for r in results] == ["updated"] * 3, results
    for n, entity in enumerate(entities):
        now = await stored(http, writer, f"PB-{n}")
        assert now["statusDetail"] == "in_progress"
        assert [now[f] for f in PERSONAL] == [entity[f] for f in PERSONAL]


async def test_patch_with_json_merge_patch_and_if_match(
    http: httpx.AsyncClient, writer: dict[str, str], blind: dict[str, str]
) -> None:
    entity = service_request("PP-1")
    created = await http.post("/api/v1/service-requests", json=entity, headers=writer)
    etag = created.headers["etag"]
    url = SR + entity["id"]
    patched = await http.patch(url, content=CLOSE, headers=blind | MERGE | {"If-Match": etag})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "closed"
    assert patched.headers["etag"] != etag
    assert not set(PERSONAL) & set(patched.json())
    now = await stored(http, writer, "PP-1")
    assert (now["status"], now["contactName"], now["description"]) == (
        "closed",
        entity["contactName"],
        entity["description"],
    )

    change = b'{"statusDetail": "in_progress"}'
    stale = await http.patch(url, content=change, headers=blind | MERGE | {"If-Match": etag})
    assert stale.status_code == 412
    removed = await http.patch(url, content=b'{"statusDetail": null}', headers=writer | MERGE)
    assert removed.status_code == 200
    assert "statusDetail" not in removed.json()
    assert (await http.patch(url, json={"status": "open"}, headers=writer)).status_code == 415
    assert (await http.patch(url, content=b'{"id": "urn:x"}', headers=writer | MERGE)).status_code == 400
    assert (await http.patch(url, content=b'{"status": 7}', headers=writer | MERGE)).status_code == 422
    assert (await http.patch(url, content=b"[1]", headers=writer | MERGE)).status_code == 400
    assert (
        await http.patch(SR + "urn:ngsi-ld:ServiceRequest:astana:nope", content=b"{}", headers=writer | MERGE)
    ).status_code == 404
    assert (await http.get("/openapi.json")).json()["paths"]["/api/v1/service-requests/{id}"]["patch"]


async def make_client(
    services: Services, http: httpx.AsyncClient, scopes: list[str], cities: list[str], read: list[str] | None = None
) -> dict[str, str]:
    if not [m for m in await services.directory.list_members() if m.bin == MEMBER_BIN]:
        await services.directory.create_member(name="Astana Akimat", bin=MEMBER_BIN, home_city="astana")
    client, secret = await services.directory.create_client(
        member=MEMBER_BIN, name="reader", scopes=scopes, cities=cities, read_cities=read
    )
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
    )
    return bearer(response.json()["access_token"])


PERSONAL_READER = ["service-requests:read", "service-requests:read-personal", "service-requests:write"]


async def test_personal_fields_only_for_the_clients_own_cities(http: httpx.AsyncClient, services: Services) -> None:
    everywhere = await make_client(services, http, PERSONAL_READER, ["*"])
    for city in ("astana", "almaty"):
        created = await http.post(
            "/api/v1/service-requests", json=service_request("C-1", city=city), headers=everywhere
        )
        assert created.status_code == 201, created.text
    almaty = await make_client(services, http, PERSONAL_READER, ["almaty"])
    own = (await http.get(SR + "urn:ngsi-ld:ServiceRequest:almaty:C-1", headers=almaty)).json()
    other = (await http.get(SR + "urn:ngsi-ld:ServiceRequest:astana:C-1", headers=almaty)).json()
    assert own["contactName"]
    assert other["status"] == "open"  # non-personal reads across cities stay open
    assert not set(PERSONAL) & set(other)
    listed = (await http.get("/api/v1/service-requests", headers=almaty)).json()["items"]
    assert {item["city"]: "contactName" in item for item in listed} == {"almaty": True, "astana": False}
    feed = (await http.get("/api/v1/changes", headers=almaty)).json()["changes"]
    assert {c["city"]: "contactName" in c["entity"] for c in feed} == {"almaty": True, "astana": False}


async def test_read_city_narrows_what_a_client_may_read(http: httpx.AsyncClient, services: Services) -> None:
    everywhere = await make_client(services, http, PERSONAL_READER, ["*"])
    for city in ("astana", "almaty", "shymkent"):
        await http.post("/api/v1/service-requests", json=service_request("N-1", city=city), headers=everywhere)
    narrow = await make_client(services, http, ["service-requests:read"], ["astana"], read=["astana", "shymkent"])
    listed = (await http.get("/api/v1/service-requests", headers=narrow)).json()["items"]
    assert sorted(item["city"] for item in listed) == ["astana", "shymkent"]
    assert (await http.get(SR + "urn:ngsi-ld:ServiceRequest:almaty:N-1", headers=narrow)).status_code == 403
    refused = await http.get("/api/v1/service-requests?city=almaty", headers=narrow)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("city-not-allowed")
    feed = (await http.get("/api/v1/changes", headers=narrow)).json()["changes"]
    assert sorted(c["city"] for c in feed) == ["astana", "shymkent"]
    whoami = (await http.get("/api/v1/whoami", headers=narrow)).json()
    assert whoami["readCities"] == ["astana", "shymkent"]
    client = (await services.directory.list_clients())[-1]
    widened = await services.directory.set_read_cities(client.client_id, None)
    assert widened.read_cities is None


Answer = tuple[int, list[tuple[str, str]], bytes]


def assert_alike(sent: list[Answer], rendered: list[Answer], *, exact: bool) -> None:
    """The answers sent from the database's JSON text are the answers rendered from parsed payloads: byte for byte
    where the text is orjson's (SQLite); on PostgreSQL, whose JSONB text spells the same values its own way, the same
    statuses, the same headers but the body's length, and bodies with the same JSON value."""
    if exact:
        assert sent == rendered
        return

    def value(answer: Answer) -> tuple[int, list[tuple[str, str]], Any]:
        status, headers, body = answer
        return status, [h for h in headers if h[0] != "content-length"], orjson.loads(body) if body else body

    assert [value(answer) for answer in sent] == [value(answer) for answer in rendered]
    assert any(b'": ' in body for _, _, body in sent)  # JSONB's text was sent, not a rendering of it


async def test_list_pages_sent_as_stored_text_are_the_pages_rendered_from_parsed_payloads(
    http: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list page put together from the JSON text the database renders is the page rendered from the parsed
    payloads through public_viewer, headers included, for every kind of reader and filter (:func:`assert_alike`)."""
    everywhere = await make_client(services, http, PERSONAL_READER, ["*"])
    for number in range(9):
        city = ("astana", "almaty", "shymkent")[number % 3]
        entity = service_request(f"T-{number}", city=city, description=f'«{number}» é 🚧 \u2028 "q" \\ {1e20}')
        if number % 2:
            entity.pop("contactName")
        created = await http.post("/api/v1/service-requests", json=entity, headers=everywhere)
        assert created.status_code == 201, created.text
    readers = [
        everywhere,
        await make_client(services, http, PERSONAL_READER, ["astana"]),
        await make_client(services, http, ["service-requests:read"], ["astana"]),
        await make_client(services, http, PERSONAL_READER, ["almaty"], read=["almaty", "astana"]),
    ]
    queries = ["", "?limit=2", "?city=astana", "?city=almaty&limit=1", "?status=open", "?city=shymkent"]

    async def pages(headers: dict[str, str]) -> list[Answer]:
        found = []
        for query in queries:
            url: str | None = "/api/v1/service-requests" + query
            while url is not None:
                response = await http.get(url, headers=headers)
                counting = ("ratelimit-remaining", "ratelimit-reset")  # they count this test's requests
                kept = [(name, value) for name, value in response.headers.multi_items() if name not in counting]
                found.append((response.status_code, kept, response.content))
                url = response.json().get("next") if response.status_code == 200 else None
        return found

    for headers in readers:
        sent = await pages(headers)
        with monkeypatch.context() as patched:  # every page parsed and rendered, as before
            patched.setattr("gateway.routes.collections.hidden_fields", lambda *_: None)
            rendered = await pages(headers)
        assert_alike(sent, rendered, exact=services.engine.dialect.name == "sqlite")
        assert any(b"contactPhone" in body for _, _, body in sent) == (headers is not readers[2])


async def test_gets_sent_as_stored_text_are_the_gets_rendered_from_parsed_payloads(
    http: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET of one entity with the JSON text the database renders as the body answers as the parsed, viewed and
    rendered payload does, headers included, for every kind of reader, 304s, 403s, 404s and tombstones
    (:func:`assert_alike`)."""
    everywhere = await make_client(services, http, PERSONAL_READER, ["*"])
    ids = []
    for number in range(6):
        city = ("astana", "almaty", "shymkent")[number % 3]
        entity = service_request(f"G-{number}", city=city, description=f'«{number}» é 🚧 \u2028 "q" \\ {1e20}')
        if number % 2:
            entity.pop("contactName")
        if number == 4:
            entity = {k: v for k, v in entity.items() if k not in ("contactName", "contactPhone", "contactEmail")}
        created = await http.post("/api/v1/service-requests", json=entity, headers=everywhere)
        assert created.status_code == 201, created.text
        ids.append(entity["id"])
    assert (await http.delete(SR + ids[5], headers=everywhere)).status_code == 204
    readers = [
        everywhere,
        await make_client(services, http, PERSONAL_READER, ["astana"]),
        await make_client(services, http, ["service-requests:read"], ["astana"]),
        await make_client(services, http, PERSONAL_READER, ["almaty"], read=["almaty", "astana"]),
    ]

    async def answers(headers: dict[str, str]) -> list[Answer]:
        found = []
        for url in [*ids, "urn:ngsi-ld:ServiceRequest:astana:none", "urn:ngsi-ld:Device:astana:G-0"]:
            for extra in ({}, {"If-None-Match": '"2", "1"'}):
                response = await http.get(SR + url, headers=headers | extra)
                counting = ("ratelimit-remaining", "ratelimit-reset")
                kept = [(name, value) for name, value in response.headers.multi_items() if name not in counting]
                found.append((response.status_code, kept, response.content))
        return found

    async def parsed_get_json(store: EntityStore, entity_id: str, remove: frozenset[str]) -> EntityText | None:
        stored = await store.get(entity_id)
        if stored is None or stored.payload is None:
            return None
        payload = {key: value for key, value in stored.payload.items() if key not in remove}
        return EntityText(stored.collection, stored.city, stored.version, orjson.dumps(payload))

    for headers in readers:
        sent = await answers(headers)
        with monkeypatch.context() as patched:  # every payload parsed, viewed and rendered
            patched.setattr(EntityStore, "get_json", parsed_get_json)
            patched.setattr("gateway.routes.collections.hidden_fields", lambda *_: None)
            rendered = await answers(headers)
        assert_alike(sent, rendered, exact=services.engine.dialect.name == "sqlite")
        assert {status for status, _, _ in sent} >= {200, 304, 404}
