"""Failing receivers: Retry-After is honoured, and a subscription failing for the whole window is marked failed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.serving import serve_app
from gateway.settings import Settings
from tests.gateway.subscription_fixtures import eventually, quick_settings
from tests.gateway.test_delivery import WRITER, subscribe, tokens, write

__all__ = ["WRITER"]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url, delivery_failure_window=1.0)


async def _log(http: httpx.AsyncClient, headers: dict[str, str], sid: str, count: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await http.get(f"/api/v1/subscriptions/{sid}/deliveries", headers=headers)).json()[
        "items"
    ]
    return items if len(items) >= count else None


async def test_retry_after_is_honoured(http: httpx.AsyncClient, register: Any) -> None:
    calls: list[str] = []

    async def busy_once(request: Request) -> Response:
        calls.append(request.headers["webhook-id"])
        if len(calls) == 1:
            return Response(status_code=503, headers={"Retry-After": "2"})
        return Response(status_code=204)

    writer, _, subscriber = await tokens(http, register, ["service-requests:read"])
    with serve_app(Starlette(routes=[Route("/webhook", busy_once, methods=["POST"])])) as base:
        created = await subscribe(http, subscriber, f"{base}/webhook")
        await write(http, writer, ["RA-1", "RA-2"])
        log = await eventually(lambda: _log(http, subscriber, created["id"], 2))
    first, second = log[-1], log[-2]  # the log is newest first
    assert first["status"] == 503
    assert second["status"] == 204
    assert second["webhookId"] == first["webhookId"]
    assert second["at"] - first["at"] >= 1.9, "backoff alone (at most 0.2 s here) would have retried sooner"


async def test_a_receiver_down_for_the_whole_window_fails_the_subscription_and_resume_restarts_it(
    http: httpx.AsyncClient, register: Any
) -> None:
    writer, _, subscriber = await tokens(http, register, ["service-requests:read"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")  # nothing listens on port 1
    await write(http, writer, ["DOWN-1", "DOWN-2"])

    async def failed() -> dict[str, Any] | None:
        found: dict[str, Any] = (await http.get(f"/api/v1/subscriptions/{created['id']}", headers=subscriber)).json()
        return found if found["state"] == "failed" else None

    state = await eventually(failed)
    assert "Connect" in state["lastError"]
    assert state["pending"]["attempts"] >= 2, "it retried before giving up"
    resumed = await http.post(f"/api/v1/subscriptions/{created['id']}/resume", headers=subscriber)
    assert resumed.json()["state"] == "active"
    assert resumed.json()["lastError"] is None
