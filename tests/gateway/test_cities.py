"""The city registry over HTTP, and unknown city codes refused everywhere (issue 15, part 4)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from catalogue.live import LiveDescriber
from catalogue.source import CollectionSummary
from gateway.errors import ValidationFailed
from gateway.services import Services
from schemas import SchemaRegistry
from schemas.cities import CityRegistry
from tests.gateway.conftest import MEMBER_BIN
from tests.gateway.exchange_app import writer
from tests.gateway.exchange_fixtures import ndjson_results, service_request

__all__ = ["writer"]  # fixtures


async def test_the_city_registry_is_public_and_in_openapi(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/cities")
    assert response.status_code == 200
    cities = {city["code"]: city for city in response.json()["cities"]}
    assert set(cities) == set(CityRegistry.load().codes)
    assert cities["almaty"]["name"] == {"kk": "Алматы", "ru": "Алматы", "en": "Almaty"}
    assert cities["astana"]["kato"] == "710000000"
    assert cities["aktobe"]["timeZone"] == "Asia/Aqtobe"
    assert cities["shymkent"]["populationClass"] == "large"
    assert (await http.get("/api/v1/cities/almaty")).json()["code"] == "almaty"
    missing = await http.get("/api/v1/cities/gotham")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "get" in paths["/api/v1/cities"]
    assert "get" in paths["/api/v1/cities/{code}"]


async def test_an_entity_of_an_unknown_city_is_refused_on_every_write(
    http: httpx.AsyncClient, services: Services
) -> None:
    client, secret = await _client(services, ["*"])
    token = (
        await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret))
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    gotham = service_request("G-1", city="gotham")
    created = await http.post("/api/v1/service-requests", json=gotham, headers=headers)
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["pointer"] == "/city"
    put = await http.put(f"/api/v1/service-requests/{gotham['id']}", json=gotham, headers=headers)
    assert put.status_code == 422
    body = orjson.dumps(gotham) + b"\n" + orjson.dumps(service_request("G-2"))
    results = await ndjson_results(
        await http.post("/api/v1/batch", content=body, headers=headers | {"Content-Type": "application/x-ndjson"})
    )
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert results[0]["errors"][0]["keyword"] == "x-city"
    good = service_request("G-3")
    await http.post("/api/v1/service-requests", json=good, headers=headers)
    patched = await http.patch(
        f"/api/v1/service-requests/{good['id']}",
        content=b'{"city": "gotham"}',
        headers=headers | {"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 422
    listed = await http.get("/api/v1/service-requests?city=gotham", headers=headers)
    assert listed.status_code == 400
    assert "gotham" in listed.json()["detail"]


async def _client(services: Services, cities: list[str]) -> Any:
    if not [m for m in await services.directory.list_members() if m.bin == MEMBER_BIN]:
        await services.directory.create_member(name="Astana Akimat", bin=MEMBER_BIN, home_city="astana")
    return await services.directory.create_client(
        member=MEMBER_BIN, name="x", scopes=["service-requests:read", "service-requests:write"], cities=cities
    )


async def test_unknown_cities_are_refused_for_clients_members_and_read_cities(
    http: httpx.AsyncClient, services: Services
) -> None:
    with pytest.raises(ValidationFailed, match="gotham"):
        await _client(services, ["astana", "gotham"])
    with pytest.raises(ValidationFailed, match="gotham"):
        await services.directory.create_member(name="Gotham", bin="000000000000", home_city="gotham")
    client, _ = await _client(services, ["astana"])
    with pytest.raises(ValidationFailed, match="gotham"):
        await services.directory.set_read_cities(client.client_id, ["gotham"])


def test_an_unknown_city_in_the_store_never_becomes_a_dataset() -> None:
    describer = LiveDescriber(SchemaRegistry.load(), "http://hub")

    def summary(city: str) -> CollectionSummary:
        return CollectionSummary("facilities", city, 3, None, None, None)

    assert describer.describe(summary("astana")) is not None
    assert describer.describe(summary("gotham")) is None
