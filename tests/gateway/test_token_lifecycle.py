"""Token lifecycle: disabling, rotating and revoking cut live tokens on every worker within the stated bound;
secret guessing is throttled with 429 and audited; refused bearer tokens are audited, sampled."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.revocation import RevocationList
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER, get_token
from tests.gateway.test_audit import Outcome, qala

__all__ = ["qala"]  # the fixture


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def second(settings: Settings, app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """Another worker on the same database, whose revocation poll runs on a clock the test moves."""
    other = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=ISSUER) as client,
    ):
        yield client, other.state.services


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    return bearer(await get_token(http, await register(scopes=["admin"], cities=["*"])))


async def whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/whoami", headers=bearer(token))


ACTIONS = {
    "disable": "/api/v1/admin/clients/{id}/disable",
    "rotate-secret": "/api/v1/admin/clients/{id}/rotate-secret",
    "revoke-tokens": "/api/v1/admin/clients/{id}/revoke-tokens",
}


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_cutting_a_client_revokes_its_live_tokens_on_every_worker_within_the_poll(
    http: httpx.AsyncClient,
    second: tuple[httpx.AsyncClient, Services],
    register: Any,
    settings: Settings,
    action: str,
) -> None:
    other_http, other = second
    clock = FakeMonotonic()
    other.revocations.monotonic = clock
    await other.revocations.load()  # loaded "at" the fake clock's now
    auth = await admin(http, register)
    who, bystander = await register(), await register()
    token, kept = await get_token(http, who), await get_token(http, bystander)
    assert (await whoami(other_http, token)).status_code == 200, "verified and cached on the other worker"

    done = await http.post(ACTIONS[action].format(id=who.client_id), headers=auth)
    assert done.status_code == 200, done.text
    refused = await whoami(http, token)
    assert refused.status_code == 401, "at once on the worker that made the change"
    assert "all of its client's tokens" in refused.json()["detail"]

    clock.now += settings.revocation_poll_seconds * 0.9
    assert (await whoami(other_http, token)).status_code == 200, "inside the bound the other worker may lag"
    clock.now = 1000.0 + settings.revocation_poll_seconds
    assert (await whoami(other_http, token)).status_code == 401, "at the bound it refuses too"
    assert (await whoami(other_http, kept)).status_code == 200, "other clients' tokens are untouched"

    if action != "disable":
        secret = done.json().get("clientSecret", who.secret)
        fresh = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(who.client_id, secret))
        assert fresh.status_code == 200, "a token issued after the cut works at once, in the same second too"
        assert (await whoami(http, fresh.json()["access_token"])).status_code == 200
        assert (await whoami(other_http, fresh.json()["access_token"])).status_code == 200


async def test_revoke_one_token_by_jti_over_the_admin_api(http: httpx.AsyncClient, register: Any) -> None:
    auth = await admin(http, register)
    who = await register()
    token, other = await get_token(http, who), await get_token(http, who)
    jti = (await whoami(http, token)).json()["tokenId"]
    answer = await http.post("/api/v1/admin/tokens/revoke", json={"jti": jti}, headers=auth)
    assert answer.json() == {"jti": jti, "revoked": True}
    assert (await whoami(http, token)).status_code == 401
    assert (await whoami(http, other)).status_code == 200
    assert (await http.post("/api/v1/admin/tokens/revoke", json={}, headers=auth)).status_code == 422
    unauthorised = await http.post("/api/v1/admin/tokens/revoke", json={"jti": jti}, headers=bearer(other))
    assert unauthorised.status_code == 403


async def test_a_client_revokes_its_own_token_on_every_worker(
    http: httpx.AsyncClient,
    second: tuple[httpx.AsyncClient, Services],
    register: Any,
    settings: Settings,
    services: Services,
) -> None:
    """RFC 7009 at /oauth/revoke: the owner's revocation holds where it was made at once, elsewhere at the bound."""
    other_http, other = second
    clock = FakeMonotonic()
    for worker in (services, other):
        worker.revocations.monotonic = clock
        await worker.revocations.load()
    who = await register()
    token = await get_token(http, who)
    assert (await whoami(http, token)).status_code == 200
    revoked = await other_http.post("/oauth/revoke", data={"token": token}, auth=(who.client_id, who.secret))
    assert revoked.status_code == 200
    assert (await whoami(other_http, token)).status_code == 401, "at once where it was revoked"
    assert (await whoami(http, token)).status_code == 200, "the first worker has not polled yet"
    clock.now = 1000.0 + settings.revocation_poll_seconds
    assert (await whoami(http, token)).status_code == 401, "and refuses it once its list is that old"
    status = await http.post("/oauth/introspect", data={"token": token}, auth=(who.client_id, who.secret))
    assert status.json() == {"active": False}


def test_cli_revokes_a_clients_tokens_and_one_token(qala: Callable[..., Outcome], database_url: str) -> None:
    async def setup() -> tuple[str, str, str, str]:
        settings = Settings(database_url=database_url, issuer=ISSUER)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            await services.directory.create_member(name="Akimat", bin="970240001223", home_city="astana")
            client, secret = await services.directory.create_client(
                member="970240001223", name="311", scopes=["service-requests:read"], cities=["astana"]
            )
            assert secret is not None
            token, claims = services.issuer.issue(client, ["service-requests:read"])
            second, _ = services.issuer.issue(client, ["service-requests:read"])
            return client.client_id, token, str(claims["jti"]), second

    async def status(token: str) -> int:
        app = create_app(Settings(database_url=database_url, issuer=ISSUER))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client,
        ):
            return (await whoami(client, token)).status_code

    client_id, token, jti, second = asyncio.run(setup())
    assert asyncio.run(status(token)) == 200
    one = qala("clients", "revoke-token", jti, "--database-url", database_url)
    assert one.returncode == 0, one.stderr
    assert asyncio.run(status(token)) == 401
    assert asyncio.run(status(second)) == 200
    done = qala("clients", "revoke-tokens", client_id, "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert "token epoch 1" in done.stdout
    assert asyncio.run(status(second)) == 401
    missing = qala("clients", "revoke-tokens", "qc_nobody", "--database-url", database_url)
    assert missing.returncode == 2
    assert "no client 'qc_nobody'" in missing.stderr


async def test_secret_guessing_is_throttled_per_client_and_audited(
    http: httpx.AsyncClient, register: Any, services: Services, settings: Settings
) -> None:
    who = await register()
    form = {"grant_type": "client_credentials"}
    codes = [
        (await http.post("/oauth/token", data=form, auth=(who.client_id, f"qs_guess{n}"))).status_code
        for n in range(settings.auth_failures_per_client + 5)
    ]
    assert codes[: settings.auth_failures_per_client] == [401] * settings.auth_failures_per_client
    assert set(codes[settings.auth_failures_per_client :]) == {429}
    right = await http.post("/oauth/token", data=form, auth=(who.client_id, who.secret))
    assert right.status_code == 429, "while throttled, even the right secret learns nothing"
    assert right.json()["error"] == "slow_down"
    assert int(right.headers["Retry-After"]) >= 1
    introspect = await http.post("/oauth/introspect", data={"token": "x"}, auth=(who.client_id, who.secret))
    assert introspect.status_code == 429, "every endpoint that authenticates clients shares the buckets"
    other = await register()
    assert (await get_token(http, other)).count(".") == 2, "other clients are not held back"
    throttled = [r for r in await services.audit.last(50) if r["action"] == "auth.throttled"]
    assert throttled
    assert (throttled[0]["client_id"], throttled[0]["status"], throttled[0]["outcome"]) == (
        who.client_id,
        429,
        "slow_down",
    )
    assert throttled[0]["detail"]["source"] == "127.0.0.1"


async def test_secret_guessing_is_throttled_per_source_address(http: httpx.AsyncClient, settings: Settings) -> None:
    form = {"grant_type": "client_credentials"}
    codes = [
        (await http.post("/oauth/token", data=form, auth=(f"qc_guess{n}", "qs_guess"))).status_code
        for n in range(settings.auth_failures_per_address + 3)
    ]
    assert codes[: settings.auth_failures_per_address] == [401] * settings.auth_failures_per_address
    assert set(codes[settings.auth_failures_per_address :]) == {429}


def forged(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "admin"
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def test_refused_bearer_tokens_are_audited_and_a_flood_is_sampled(
    http: httpx.AsyncClient, register: Any, services: Services, settings: Settings
) -> None:
    clock = FakeMonotonic()
    services.refusals.clock = clock
    who = await register()
    token = await get_token(http, who)
    before = (await services.audit.head())[0]
    assert (await whoami(http, forged(token))).status_code == 401
    assert (await whoami(http, "not.a.jwt\x00")).status_code == 401
    assert (await http.get("/api/v1/whoami")).status_code == 401, "no token presented: not an authentication"
    records = await services.audit.records(after=before)
    assert [(r["action"], r["status"], r["route"]) for r in records] == [
        ("api.unauthorized", 401, "/api/v1/whoami")
    ] * 2
    assert records[0]["detail"] == {
        "reason": "the access token signature does not verify",
        "source": "127.0.0.1",
        "suppressed": 0,
        "claimedClientId": who.client_id,
    }
    assert records[0]["client_id"] is None, "an unverified claim is never the record's client"

    flood = 300
    for _ in range(flood):
        await whoami(http, "garbage")
    written = len(await services.audit.records(after=before, limit=1000)) - 2
    assert written == settings.audit_refusals_per_source - 2, "at most the per-source allowance per window"
    clock.now += settings.auth_failure_window_seconds
    await whoami(http, "garbage")
    last = (await services.audit.last(1))[0]
    assert last["detail"]["suppressed"] == flood - written, "the next record counts what was held back"
    assert (await services.audit.verify()).intact


async def test_requests_that_find_the_revocations_stale_together_share_one_load() -> None:
    """Concurrent requests share one reload; a request that begins more than poll_seconds after a load still in
    flight began starts its own (that load may predate a revocation it must see)."""
    clock = [100.0]
    revocations = RevocationList(None, poll_seconds=2.0, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    started: list[float] = []
    release = asyncio.Event()

    async def load() -> None:
        started.append(clock[0])
        await release.wait()
        revocations._loaded_at = clock[0]

    revocations.load = load  # type: ignore[method-assign]
    waiting = [asyncio.create_task(revocations.refresh_if_stale()) for _ in range(16)]
    for _ in range(3):  # the tasks run, then the load they started
        await asyncio.sleep(0)
    assert started == [100.0]
    clock[0] = 103.0  # the shared load began more than poll_seconds ago: a new request does not join it
    late = asyncio.create_task(revocations.refresh_if_stale())
    for _ in range(3):  # the tasks run, then the load they started
        await asyncio.sleep(0)
    assert started == [100.0, 103.0]
    waiting[0].cancel()  # a request that goes away leaves the load to the others
    release.set()
    await asyncio.gather(*waiting[1:], late)
    assert revocations._loading is None
    await revocations.refresh_if_stale()  # fresh now: nothing to load
    assert started == [100.0, 103.0]
