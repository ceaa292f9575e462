"""One problem-details shape for every error path (RFC 9457), and the RFC 6749 shape at the token endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER, get_token

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}
router = APIRouter()


@router.get("/api/v1/boom")
async def boom() -> None:
    raise RuntimeError("database password is hunter2")


@router.post("/api/v1/echo-size")
async def echo_size(body: dict[str, Any]) -> int:
    return len(body)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": 2048, "rate_limit_requests": 5})


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, routers=[router])
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def lenient_http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Starlette re-raises unhandled errors after answering (for server logs); read the answer instead.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) <= PROBLEM_KEYS, body
    assert body["type"] == f"https://qala.kz/problems/{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def test_every_error_path_is_a_problem(lenient_http: httpx.AsyncClient, register: Any) -> None:
    http = lenient_http
    admin = await register(scopes=["admin"])
    token = await get_token(http, admin)
    auth = {"Authorization": f"Bearer {token}"}

    assert_problem(await http.get("/api/v1/whoami"), 401, "invalid-token")
    reader = await register(scopes=["service-requests:read"])
    reader_auth = {"Authorization": f"Bearer {await get_token(http, reader)}"}
    assert_problem(await http.get("/api/v1/admin/members", headers=reader_auth), 403, "insufficient-scope")
    body = assert_problem(await http.get("/no/such/path"), 404, "not-found")
    assert body["instance"] == "/no/such/path"
    assert_problem(await http.get("/api/v1/admin/clients/qc_missing", headers=auth), 404, "not-found")
    assert_problem(await http.delete("/api/v1/whoami", headers=auth), 405, "method-not-allowed")

    invalid = assert_problem(
        await http.post("/api/v1/admin/members", json={"name": "X", "homeCity": 5}, headers=auth),
        422,
        "validation-failed",
    )
    pointers = {error["pointer"] for error in invalid["errors"]}
    assert pointers == {"/bin", "/homeCity"}
    assert all(set(error) == {"pointer", "keyword", "message"} for error in invalid["errors"])
    bad_bin = assert_problem(
        await http.post(
            "/api/v1/admin/members", json={"name": "X", "bin": "123456789012", "homeCity": "astana"}, headers=auth
        ),
        422,
        "validation-failed",
    )
    assert bad_bin["errors"][0]["pointer"] == "/bin"
    not_json = await http.post(
        "/api/v1/admin/members", content=b"{", headers={**auth, "content-type": "application/json"}
    )
    assert_problem(not_json, 422, "validation-failed")

    large = b'{"a": "' + b"x" * 4096 + b'"}'
    declared = await http.post("/api/v1/echo-size", content=large, headers={"content-type": "application/json"})
    assert_problem(declared, 413, "payload-too-large")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}'

    streamed = await http.post("/api/v1/echo-size", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "payload-too-large")
    small = await http.post("/api/v1/echo-size", json={"a": 1}, headers=auth)
    assert small.status_code == 200

    crash = assert_problem(await http.get("/api/v1/boom"), 500, "internal")
    assert "hunter2" not in crash["detail"]
    assert "Traceback" not in crash["detail"]

    for _ in range(5):
        await http.get("/api/v1/whoami", headers=reader_auth)
    limited = assert_problem(await http.get("/api/v1/whoami", headers=reader_auth), 429, "rate-limited")
    assert limited["detail"].startswith("rate limit of 5 requests exceeded")


async def test_token_endpoint_keeps_rfc6749_shape(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("qc_x", "qs_y"))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error", "error_description"}
