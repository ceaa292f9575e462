"""Fixtures for the gateway: the real app in process, on SQLite and PostgreSQL, with real clients registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.clients import Client
from gateway.services import Services
from gateway.settings import Settings
from schemas.identifiers import with_check_digit

ISSUER = "http://testserver"
MEMBER_BIN = with_check_digit("97024000122")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        env="demo",
        database_url=database_url,
        issuer=ISSUER,
        key_publish_lead=0,
        revocation_poll_seconds=0.2,
        key_refresh_seconds=0.5,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    found: Services = app.state.services
    return found


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        yield client


@dataclass
class Registered:
    client: Client
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.client_id


@pytest.fixture
def register(services: Services) -> Any:
    """``await register(scopes=[...], cities=[...])``: a member (once) and a client with a secret."""

    async def make(
        scopes: list[str] | None = None,
        cities: list[str] | None = None,
        jwks: dict[str, Any] | None = None,
        with_secret: bool = True,
    ) -> Registered:
        if not [m for m in await services.directory.list_members() if m.bin == MEMBER_BIN]:
            await services.directory.create_member(name="Astana Akimat", bin=MEMBER_BIN, home_city="astana")
        client, secret = await services.directory.create_client(
            member=MEMBER_BIN,
            name="311 contact centre",
            scopes=scopes if scopes is not None else ["service-requests:read", "service-requests:write"],
            cities=cities if cities is not None else ["astana"],
            jwks=jwks,
            with_secret=with_secret,
        )
        return Registered(client, secret)

    return make


async def get_token(http: httpx.AsyncClient, who: Registered, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    assert who.secret is not None
    response = await http.post("/oauth/token", data=data, auth=(who.client_id, who.secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
