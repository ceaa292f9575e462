"""Fixtures of the exchange API tests: the hub app with the exchange routers, tokens for writers and readers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.routes.exchange import exchange_routers
from gateway.services import Services
from gateway.settings import Settings
from schemas import SchemaRegistry
from tests.gateway.conftest import ISSUER, get_token
from tests.gateway.exchange_fixtures import bearer

WRITER_SCOPES = ["service-requests:read", "service-requests:write", "service-requests:read-personal"]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, routers=exchange_routers(SchemaRegistry.load()))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    found: Services = app.state.services
    return found


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER, timeout=60) as client:
        yield client


@pytest.fixture
async def writer(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=WRITER_SCOPES, cities=["astana"])))


@pytest.fixture
async def reader(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=["service-requests:read"], cities=["almaty"])))
