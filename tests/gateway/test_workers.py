"""Several workers on one database: revocations, used client assertions and key rotations hold across them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.app import create_app
from gateway.client_auth import ASSERTION_TYPE
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER, get_token


@pytest.fixture
async def second_worker(settings: Settings, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Another app instance (as another uvicorn worker would build) on the same database."""
    other = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=ISSUER) as client,
    ):
        yield client


async def test_revocation_on_one_worker_holds_on_another(
    http: httpx.AsyncClient, second_worker: httpx.AsyncClient, register: Any, settings: Settings
) -> None:
    who = await register()
    token = await get_token(http, who)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await second_worker.get("/api/v1/whoami", headers=bearer)).status_code == 200, "now cached there"
    await http.post("/oauth/revoke", data={"token": token}, auth=(who.client_id, who.secret))
    await asyncio.sleep(settings.revocation_poll_seconds + 0.1)
    refused = await second_worker.get("/api/v1/whoami", headers=bearer)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


async def test_client_assertion_replayed_to_another_worker_is_refused(
    http: httpx.AsyncClient, second_worker: httpx.AsyncClient, register: Any
) -> None:
    key = ECKey.generate_key("P-256")
    who = await register(jwks={"keys": [key.as_dict(private=False)]}, with_secret=False)
    now = int(time.time())
    claims = {"iss": who.client_id, "sub": who.client_id, "aud": ISSUER, "exp": now + 60, "jti": "only-once"}
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode({"alg": "ES256"}, claims, key),
    }
    assert (await http.post("/oauth/token", data=form)).status_code == 200
    replay = await second_worker.post("/oauth/token", data=form)
    assert replay.status_code == 401
    assert "replay" in replay.json()["error_description"]


async def test_key_rotated_by_one_worker_verifies_on_another(
    http: httpx.AsyncClient, second_worker: httpx.AsyncClient, register: Any, services: Services
) -> None:
    who = await register()
    rotated = await services.keys.rotate("access-token", lead=0)
    token = await get_token(http, who)
    assert jwt.decode(token, services.keys.verification_set("access-token")).header["kid"] == rotated.kid
    # The second worker has not reloaded its keys yet: an unknown kid makes it look again.
    response = await second_worker.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    published = {key["kid"] for key in (await second_worker.get("/oauth/jwks")).json()["keys"]}
    assert rotated.kid in published
