"""The resource-server side: the negative matrix, each row refused with the right status and challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.app import create_app
from gateway.auth import Caller, require_scope
from gateway.services import Services
from gateway.settings import Settings, TrustedIssuer
from tests.gateway.conftest import ISSUER, get_token

router = APIRouter()


@router.get("/api/v1/probe/{city}")
async def probe(city: str, caller: Annotated[Caller, Depends(require_scope("service-requests:write"))]) -> Any:
    caller.check_city(city)
    return {"city": city}


EXTERNAL_KEY = ECKey.generate_key("P-256", parameters={"kid": "conformance-1"})
EXTERNAL = "https://conformance.qala.kz"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    trusted = [TrustedIssuer(issuer=EXTERNAL, jwks={"keys": [EXTERNAL_KEY.as_dict(private=False)]})]
    application = create_app(settings.model_copy(update={"trusted_issuers": trusted}), routers=[router])
    async with application.router.lifespan_context(application):
        yield application


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Forge:
    """Tokens built by hand with the hub's own key, so each row differs from a valid token in one way only."""

    def __init__(self, services: Services, client_id: str) -> None:
        self.key = services.keys.signer("access-token")
        now = int(time.time())
        self.claims = {
            "iss": ISSUER,
            "sub": client_id,
            "aud": f"{ISSUER}/api/v1",
            "client_id": client_id,
            "iat": now,
            "exp": now + 300,
            "jti": f"forged-{now}",
            "scope": "service-requests:write",
            "cities": ["astana"],
        }

    def header(self, **changes: Any) -> dict[str, Any]:
        return {"alg": "ES256", "kid": self.key.kid, "typ": "at+jwt", **changes}

    def token(self, header: dict[str, Any] | None = None, key: Any = None, **changes: Any) -> str:
        claims = {name: value for name, value in {**self.claims, **changes}.items() if value is not None}
        return jwt.encode(header or self.header(), claims, key or self.key.key)

    def unsigned(self, alg: str, secret: bytes = b"") -> str:
        head = b64(json.dumps(self.header(alg=alg)).encode())
        body = b64(json.dumps(self.claims).encode())
        signature = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()) if secret else ""
        return f"{head}.{body}.{signature}"


async def call(http: httpx.AsyncClient, token: str | None, path: str = "/api/v1/probe/astana") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.get(path, headers=headers)


async def test_negative_matrix(http: httpx.AsyncClient, register: Any, services: Services) -> None:
    who = await register(scopes=["service-requests:read", "service-requests:write"], cities=["astana"])
    forge = Forge(services, who.client_id)
    public_pem = services.keys.signer("access-token").key.as_pem(private=False)
    now = int(time.time())
    assert (await call(http, forge.token())).status_code == 200, "the forge's baseline token must be valid"
    assert (await call(http, forge.token(exp=now - 10))).status_code == 200, "inside the clock leeway"

    revoked = await get_token(http, who)
    await http.post("/oauth/revoke", data={"token": revoked}, auth=(who.client_id, who.secret))
    read_only = await get_token(http, who, scope="service-requests:read")

    rows: list[tuple[str, str | None, int, str]] = [
        ("no token", None, 401, ""),
        ("malformed", "abc.def", 401, "invalid_token"),
        ("garbage segments", "a.b.c", 401, "invalid_token"),
        ("expired", forge.token(exp=now - 120), 401, "invalid_token"),
        ("not yet valid", forge.token(nbf=now + 600), 401, "invalid_token"),
        ("wrong issuer", forge.token(iss="https://evil.example"), 401, "invalid_token"),
        ("wrong audience", forge.token(aud=who.client_id), 401, "invalid_token"),
        ("no audience", forge.token(aud=None), 401, "invalid_token"),
        ("wrong typ", forge.token(header=forge.header(typ="JWT")), 401, "invalid_token"),
        ("no typ", forge.token(header={"alg": "ES256", "kid": forge.key.kid}), 401, "invalid_token"),
        ("alg none", forge.unsigned("none"), 401, "invalid_token"),
        ("HS256 with the public key as secret", forge.unsigned("HS256", public_pem), 401, "invalid_token"),
        (
            "unknown signing key",
            forge.token(header=forge.header(kid="other"), key=ECKey.generate_key("P-256")),
            401,
            "invalid_token",
        ),
        ("signature of another key under our kid", forge.token(key=ECKey.generate_key("P-256")), 401, "invalid_token"),
        ("revoked", revoked, 401, "invalid_token"),
        ("scope missing", read_only, 403, "insufficient_scope"),
        ("city not allowed", forge.token(), 403, ""),
    ]
    for reason, token, status, challenge in rows:
        path = "/api/v1/probe/almaty" if reason == "city not allowed" else "/api/v1/probe/astana"
        response = await call(http, token, path)
        assert response.status_code == status, f"{reason}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json", reason
        body = response.json()
        assert body["status"] == status
        assert body["detail"], reason
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer"), reason
        if challenge:
            assert f'error="{challenge}"' in response.headers["www-authenticate"], reason
    assert (await call(http, forge.token(), "/api/v1/probe/almaty")).json()["type"].endswith("/city-not-allowed")


async def test_wrong_secret_and_disabled_client_never_reach_the_api(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    who = await register()
    data = {"grant_type": "client_credentials"}
    assert (await http.post("/oauth/token", data=data, auth=(who.client_id, "qs_guess"))).status_code == 401
    token = await get_token(http, who)
    await services.directory.set_enabled(who.client_id, False)
    assert (await http.post("/oauth/token", data=data, auth=(who.client_id, who.secret))).status_code == 401
    # Disabling revokes the tokens issued before it too (issue 15): at once once this worker reloads its list.
    await services.revocations.load()
    refused = await call(http, token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


async def test_trusted_issuer_tokens_are_accepted_with_the_same_checks(http: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = {
        "iss": EXTERNAL,
        "sub": "vendor-module",
        "aud": f"{ISSUER}/api/v1",
        "client_id": "vendor-module",
        "iat": now,
        "exp": now + 60,
        "jti": "ext-1",
        "scope": "service-requests:write",
        "cities": ["astana"],
    }
    header = {"alg": "ES256", "kid": "conformance-1", "typ": "at+jwt"}
    good = await call(http, jwt.encode(header, claims, EXTERNAL_KEY))
    assert good.status_code == 200
    whoami = await call(http, jwt.encode(header, claims, EXTERNAL_KEY), "/api/v1/whoami")
    assert whoami.json()["issuer"] == EXTERNAL
    wrong_aud = await call(http, jwt.encode(header, {**claims, "aud": "https://module.kz"}, EXTERNAL_KEY))
    assert wrong_aud.status_code == 401
    forged = await call(http, jwt.encode(header, claims, ECKey.generate_key("P-256")))
    assert forged.status_code == 401
    other_city = await call(http, jwt.encode(header, claims, EXTERNAL_KEY), "/api/v1/probe/shymkent")
    assert other_city.status_code == 403


async def test_admin_api_needs_admin_scope(http: httpx.AsyncClient, register: Any) -> None:
    who = await register()
    response = await http.get(
        "/api/v1/admin/clients", headers={"Authorization": f"Bearer {await get_token(http, who)}"}
    )
    assert response.status_code == 403
    assert 'scope="admin"' in response.headers["www-authenticate"]
