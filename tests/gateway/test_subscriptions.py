"""The subscription resource: ownership, scopes, selection checks, webhook URL guard, secrets, actions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer
from tests.gateway.subscription_fixtures import quick_settings

READER = ["service-requests:read"]
HOOK = "http://127.0.0.1:9/webhook"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url)


async def token_for(http: httpx.AsyncClient, register: Any, scopes: list[str]) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=scopes, cities=["astana"])))


def webhook(url: str = HOOK, **selection: Any) -> dict[str, Any]:
    return {"types": ["ServiceRequest"], **selection, "delivery": {"kind": "webhook", "url": url}}


async def test_create_shows_the_secret_once_and_the_owner_manages_it(http: httpx.AsyncClient, register: Any) -> None:
    owner = await token_for(http, register, READER)
    created = await http.post(
        "/api/v1/subscriptions", json=webhook(cities=["astana"], filters={"status": "open"}), headers=owner
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["state"] == "active"
    assert body["types"] == ["ServiceRequest"]
    assert body["filters"] == {"status": "open"}
    assert created.headers["location"].endswith(body["id"])
    again = await http.get(f"/api/v1/subscriptions/{body['id']}", headers=owner)
    assert again.status_code == 200
    assert "secret" not in again.json()
    listed = await http.get("/api/v1/subscriptions", headers=owner)
    assert [s["id"] for s in listed.json()["items"]] == [body["id"]]

    other = await token_for(http, register, READER)
    assert (await http.get(f"/api/v1/subscriptions/{body['id']}", headers=other)).status_code == 404
    assert (await http.get("/api/v1/subscriptions", headers=other)).json()["items"] == []

    paused = await http.post(f"/api/v1/subscriptions/{body['id']}/pause", headers=owner)
    assert paused.json()["state"] == "paused"
    resumed = await http.post(f"/api/v1/subscriptions/{body['id']}/resume", headers=owner)
    assert resumed.json()["state"] == "active"
    rotated = await http.post(f"/api/v1/subscriptions/{body['id']}/rotate-secret", headers=owner)
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != body["secret"]
    patched = await http.patch(f"/api/v1/subscriptions/{body['id']}", json={"cities": ["almaty"]}, headers=owner)
    assert patched.status_code == 200, patched.text
    assert patched.json()["cities"] == ["almaty"]
    assert patched.json()["filters"] == {"status": "open"}
    replayed = await http.post(f"/api/v1/subscriptions/{body['id']}/replay", json={"since": None}, headers=owner)
    assert replayed.status_code == 200
    broken = await http.post(f"/api/v1/subscriptions/{body['id']}/replay", content=b"{", headers=owner)
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"
    assert (await http.delete(f"/api/v1/subscriptions/{body['id']}", headers=owner)).status_code == 204
    assert (await http.get(f"/api/v1/subscriptions/{body['id']}", headers=owner)).status_code == 404


async def test_a_type_the_client_cannot_read_is_refused(http: httpx.AsyncClient, register: Any) -> None:
    devices_only = await token_for(http, register, ["devices:read"])
    refused = await http.post("/api/v1/subscriptions", json=webhook(), headers=devices_only)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://qala.kz/problems/insufficient-scope"
    mixed = await http.post(
        "/api/v1/subscriptions", json={**webhook(), "types": ["Device", "ServiceRequest"]}, headers=devices_only
    )
    assert mixed.status_code == 403
    assert "service-requests:read" in mixed.json()["detail"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"types": []}, "/types"),
        ({"types": ["Unicorn"]}, "/types"),
        ({"cities": ["Not A City"]}, "/cities"),
        ({"filters": {"contactPhone": "1"}}, "/filters/contactPhone"),
        ({"bbox": [80, 50, 70, 40]}, "/bbox"),
        ({"delivery": {"kind": "carrier-pigeon"}}, "/delivery"),
        ({"colour": "blue"}, "/colour"),
    ],
)
async def test_malformed_selections_are_422_problems(
    http: httpx.AsyncClient, register: Any, body: dict[str, Any], pointer: str
) -> None:
    owner = await token_for(http, register, READER)
    response = await http.post("/api/v1/subscriptions", json={**webhook(), **body}, headers=owner)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == pointer


async def test_a_tampered_cursor_is_a_400_problem(http: httpx.AsyncClient, register: Any) -> None:
    owner = await token_for(http, register, READER)
    response = await http.post("/api/v1/subscriptions", json={**webhook(), "since": "eyJrIjoiNSJ9.AAAA"}, headers=owner)
    assert response.status_code == 400
    assert response.json()["type"] == "https://qala.kz/problems/bad-request"
