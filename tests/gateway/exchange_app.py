"""Fixtures of the exchange API tests: tokens for a writer (Astana, with read-personal) and a reader (Almaty)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer

WRITER_SCOPES = ["service-requests:read", "service-requests:write", "service-requests:read-personal"]


@pytest.fixture
async def writer(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=WRITER_SCOPES, cities=["astana"])))


@pytest.fixture
async def reader(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=["service-requests:read"], cities=["almaty"])))
