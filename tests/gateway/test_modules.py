"""The registry of certified modules: certificates in, a public list out, forgeries refused as problems."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from conformance.certificate import issue_certificate
from conformance.hubkeys import PURPOSE, HubSigner
from conformance.results import ModuleInfo, Result, RunReport, Status
from gateway.app import create_app
from gateway.routes import ROUTERS, modules
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[FastAPI]:
    extra = [] if modules.router in ROUTERS else [modules.router]
    application = create_app(settings, routers=extra)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(hub: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub), base_url=ISSUER) as http:
        yield http


def signer_of(hub: FastAPI) -> HubSigner:
    services: Services = hub.state.services
    key = services.keys.signer(PURPOSE)
    return HubSigner(services.settings.issuer, key.kid, key.key, services.keys.jwks())  # type: ignore[arg-type]


def certified(name: str = "311 module", profile: str = "service-requests") -> RunReport:
    module = ModuleInfo("http://module", name, "Vendor LLP", "2.4.1", "cd" * 32)
    result = Result("QM-AUTH-001/no-token", "QM-AUTH-001", "no token", "MUST", Status.PASS)
    return RunReport("r1", profile, "1.0.0", "1.0.0", module, "2030-01-01T00:00:00Z", "seeded", [result])


async def test_conformance_key_is_published_in_the_hub_jwks(hub: FastAPI, client: httpx.AsyncClient) -> None:
    kids = {key["kid"] for key in (await client.get("/oauth/jwks")).json()["keys"]}
    assert signer_of(hub).kid in kids


async def test_register_and_list(hub: FastAPI, client: httpx.AsyncClient) -> None:
    token = issue_certificate(certified(), signer_of(hub))
    created = await client.post("/api/v1/modules", content=token, headers={"Content-Type": "application/jose"})
    assert created.status_code == 201, created.text
    assert created.json()["moduleName"] == "311 module"
    again = await client.post("/api/v1/modules", json={"certificate": token})
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    other = issue_certificate(certified("Meters", "meter-readings"), signer_of(hub))
    assert (await client.post("/api/v1/modules", json={"certificate": other})).status_code == 201

    listed = (await client.get("/api/v1/modules")).json()
    assert sorted(item["moduleName"] for item in listed["items"]) == ["311 module", "Meters"]
    only = (await client.get("/api/v1/modules", params={"profile": "meter-readings"})).json()["items"]
    assert [item["moduleName"] for item in only] == ["Meters"]
    assert only[0]["openapiSha256"] == "cd" * 32


async def test_forged_certificate_is_a_422_problem(hub: FastAPI, client: httpx.AsyncClient) -> None:
    real = signer_of(hub)
    forged = issue_certificate(certified(), HubSigner(real.issuer, real.kid, ECKey.generate_key("P-256"), {}))
    response = await client.post("/api/v1/modules", json={"certificate": forged})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/certificate"
    assert (await client.get("/api/v1/modules")).json()["items"] == []


async def test_malformed_bodies_are_problems(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/modules", json={"cert": "x"})
    assert response.status_code == 422
    response = await client.post("/api/v1/modules", content=b"{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
