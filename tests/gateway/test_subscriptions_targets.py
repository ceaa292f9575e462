"""Webhook URLs outside the demo: https only, and never into the hub's own network (SSRF guard)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer
from tests.gateway.subscription_fixtures import quick_settings

SECRET = "a-development-secret-of-at-least-32-characters"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url, env="development", secret_key=SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "http://93.184.215.14/hook",
        "https://user:pw@93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
    ],
)
async def test_private_loopback_link_local_and_plain_http_are_refused(
    http: httpx.AsyncClient, register: Any, url: str
) -> None:
    owner = bearer(await get_token(http, await register(scopes=["service-requests:read"], cities=["astana"])))
    body = {"types": ["ServiceRequest"], "delivery": {"kind": "webhook", "url": url}}
    response = await http.post("/api/v1/subscriptions", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/delivery/url"


async def test_a_public_https_url_is_accepted(http: httpx.AsyncClient, register: Any) -> None:
    owner = bearer(await get_token(http, await register(scopes=["service-requests:read"], cities=["astana"])))
    body = {"types": ["ServiceRequest"], "delivery": {"kind": "webhook", "url": "https://93.184.215.14/hook"}}
    response = await http.post("/api/v1/subscriptions", json=body, headers=owner)
    assert response.status_code == 201, response.text


async def test_an_operator_may_allow_private_addresses(database_url: str) -> None:
    from gateway.subscriptions.targets import vet  # noqa: PLC0415

    allowed = quick_settings(database_url, env="development", secret_key=SECRET, webhook_allow_private=True)
    await vet("https://10.1.2.3/hook", allowed)
    with pytest.raises(ValueError, match="https"):
        await vet("http://10.1.2.3/hook", allowed)
