"""Web surface of the hub (issue 15, part 5): links never reflect the Host header; pages carry security headers."""

from __future__ import annotations

import httpx

from catalogue.headers import PAGE_POLICY
from tests.gateway.conftest import ISSUER
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import service_request

__all__ = ["reader", "writer"]  # fixtures
EVIL = {"Host": "evil.example"}


async def test_next_and_location_links_use_the_public_url_not_the_host_header(
    http: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    for n in range(3):
        created = await http.post("/api/v1/service-requests", json=service_request(f"H-{n}"), headers=writer | EVIL)
        assert created.status_code == 201, created.text
        assert created.headers["location"].startswith(ISSUER + "/api/v1/service-requests/"), created.headers
    put = await http.put(
        "/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:H-9",
        json=service_request("H-9"),
        headers=writer | EVIL,
    )
    assert put.status_code == 201
    assert put.headers["location"] == ISSUER + "/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:H-9"

    page = await http.get("/api/v1/service-requests?limit=2", headers=writer | EVIL)
    assert page.json()["next"].startswith(ISSUER + "/api/v1/service-requests?")
    assert "evil.example" not in page.headers["link"]
    following = await http.get(page.json()["next"].removeprefix(ISSUER), headers=writer)
    assert following.status_code == 200
    assert len(following.json()["items"]) == 2

    feed = await http.get("/api/v1/changes?limit=1", headers=writer | EVIL)
    assert feed.json()["next"].startswith(ISSUER + "/api/v1/changes?")


async def test_schema_registry_links_use_the_public_url(http: httpx.AsyncClient) -> None:
    types = (await http.get("/api/v1/schemas", headers=EVIL)).json()["types"]
    assert all(t["href"].startswith(ISSUER + "/api/v1/schemas/") for t in types)


async def test_html_pages_of_the_hub_carry_security_headers(http: httpx.AsyncClient) -> None:
    page = await http.get("/dataset")
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    docs = await http.get("/docs")
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    api = await http.get("/api/v1/schemas")
    assert api.headers["x-content-type-options"] == "nosniff"
