"""The authorization server, driven by a real OAuth client (Authlib) and by raw RFC requests."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.client_auth import ASSERTION_TYPE
from gateway.services import Services
from tests.gateway.conftest import ISSUER, get_token

TOKEN_URL = f"{ISSUER}/oauth/token"


def oauth_client(app: FastAPI, client_id: str, secret: Any, method: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id,
        secret,
        token_endpoint_auth_method=method,
        transport=httpx.ASGITransport(app=app),
        base_url=ISSUER,
    )


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_client_gets_token_with_secret_and_calls_api(app: FastAPI, register: Any, method: str) -> None:
    who = await register(scopes=["service-requests:read", "service-requests:write"])
    async with oauth_client(app, who.client_id, who.secret, method) as client:
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials", scope="service-requests:read")
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "service-requests:read"
        assert "refresh_token" not in token
        response = await client.get("/api/v1/whoami")
    assert response.status_code == 200
    assert response.json()["clientId"] == who.client_id
    assert response.json()["scopes"] == ["service-requests:read"]


async def test_authlib_client_gets_token_with_private_key_jwt(app: FastAPI, register: Any) -> None:
    key = ECKey.generate_key("P-256")
    public = {"keys": [{**key.as_dict(private=False), "kid": "city-key-1"}]}
    who = await register(jwks=public, with_secret=False)
    private = ECKey.import_key({**key.as_dict(private=True), "kid": "city-key-1"})
    async with oauth_client(app, who.client_id, private, PrivateKeyJWT(TOKEN_URL, alg="ES256")) as client:
        await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        response = await client.get("/api/v1/whoami")
    assert response.status_code == 200
    assert response.json()["clientId"] == who.client_id
    assert response.json()["member"] == who.client.member


def assertion(key: ECKey, client_id: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "iat": now, "jti": f"j{now}"}
    claims.update(overrides)
    return jwt.encode({"alg": "ES256"}, {k: v for k, v in claims.items() if v is not None}, key)


async def post_assertion(http: httpx.AsyncClient, value: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": value}
    return await http.post("/oauth/token", data=data)


async def test_private_key_jwt_rules(http: httpx.AsyncClient, register: Any) -> None:
    key = ECKey.generate_key("P-256")
    who = await register(jwks={"keys": [key.as_dict(private=False)]}, with_secret=False)
    good = assertion(key, who.client_id, jti="once")
    assert (await post_assertion(http, good)).status_code == 200
    replay = await post_assertion(http, good)
    assert replay.status_code == 401
    assert replay.json() == {
        "error": "invalid_client",
        "error_description": "client assertion already used (jti replay)",
    }
    # aud may be the issuer itself (RFC 7523 allows either)
    assert (await post_assertion(http, assertion(key, who.client_id, aud=ISSUER, jti="a"))).status_code == 200
    refused = {
        "wrong audience": assertion(key, who.client_id, aud="https://elsewhere.kz", jti="b"),
        "expired": assertion(key, who.client_id, exp=int(time.time()) - 120, jti="c"),
        "no exp": assertion(key, who.client_id, exp=None, jti="d"),
        "no jti": assertion(key, who.client_id, jti=None),
        "iss differs from sub": assertion(key, who.client_id, iss="qc_other", jti="e"),
        "other key": assertion(ECKey.generate_key("P-256"), who.client_id, jti="f"),
        "lives too long": assertion(key, who.client_id, exp=int(time.time()) + 7200, jti="g"),
    }
    for reason, value in refused.items():
        response = await post_assertion(http, value)
        assert response.status_code == 401, reason
        assert response.json()["error"] == "invalid_client", reason


async def test_token_is_rfc9068_with_hub_audience(http: httpx.AsyncClient, register: Any, services: Services) -> None:
    who = await register(cities=["astana", "almaty"])
    token = await get_token(http, who)
    header = jwt.decode(token, services.keys.verification_set("access-token")).header
    claims = jwt.decode(token, services.keys.verification_set("access-token")).claims
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert claims["aud"] == f"{ISSUER}/api/v1"
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == who.client_id
    assert claims["cities"] == ["astana", "almaty"]
    assert claims["member"] == who.client.member
    assert claims["exp"] - claims["iat"] == services.settings.access_token_ttl
    assert {"iat", "jti", "scope"} <= claims.keys()


async def test_token_endpoint_errors_follow_rfc6749(http: httpx.AsyncClient, register: Any) -> None:
    who = await register(scopes=["service-requests:read"])
    auth = (who.client_id, who.secret)
    cases = [
        ({"grant_type": "client_credentials", "scope": "service-requests:write"}, auth, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "admin"}, auth, 400, "invalid_scope"),
        ({"grant_type": "password", "username": "x"}, auth, 400, "unsupported_grant_type"),
        ({}, auth, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, (who.client_id, "qs_wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("qc_nobody", "qs_wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
    ]
    for data, credentials, status, error in cases:
        response = await http.post("/oauth/token", data=data, auth=credentials)
        assert response.status_code == status, (data, response.text)
        assert response.json()["error"] == error
        assert response.json()["error_description"]
        assert response.headers["cache-control"] == "no-store"
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Basic")
    both = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": who.client_id, "client_secret": who.secret},
        auth=auth,
    )
    assert both.json()["error"] == "invalid_request"
    as_json = await http.post("/oauth/token", json={"grant_type": "client_credentials"}, auth=auth)
    assert as_json.json()["error"] == "invalid_request"


async def test_disabled_client_and_rotated_secret(http: httpx.AsyncClient, register: Any, services: Services) -> None:
    who = await register()
    new_secret = await services.directory.rotate_secret(who.client_id)
    data = {"grant_type": "client_credentials"}
    assert (await http.post("/oauth/token", data=data, auth=(who.client_id, who.secret))).status_code == 401
    assert (await http.post("/oauth/token", data=data, auth=(who.client_id, new_secret))).status_code == 200
    await services.directory.set_enabled(who.client_id, False)
    refused = await http.post("/oauth/token", data=data, auth=(who.client_id, new_secret))
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "this client is disabled"


async def test_introspection_only_for_own_tokens(http: httpx.AsyncClient, register: Any) -> None:
    alice, bob = await register(), await register()
    token = await get_token(http, alice)
    mine = await http.post("/oauth/introspect", data={"token": token}, auth=(alice.client_id, alice.secret))
    assert mine.status_code == 200
    assert mine.json()["active"] is True
    assert mine.json()["client_id"] == alice.client_id
    assert mine.json()["scope"] == "service-requests:read service-requests:write"
    theirs = await http.post("/oauth/introspect", data={"token": token}, auth=(bob.client_id, bob.secret))
    assert theirs.json() == {"active": False}
    junk = await http.post("/oauth/introspect", data={"token": "junk"}, auth=(alice.client_id, alice.secret))
    assert junk.json() == {"active": False}
    anonymous = await http.post("/oauth/introspect", data={"token": token})
    assert anonymous.status_code == 401


async def test_revocation_only_by_owner(http: httpx.AsyncClient, register: Any) -> None:
    alice, bob = await register(), await register()
    token = await get_token(http, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    by_bob = await http.post("/oauth/revoke", data={"token": token}, auth=(bob.client_id, bob.secret))
    assert by_bob.status_code == 200
    assert (await http.get("/api/v1/whoami", headers=bearer)).status_code == 200
    unknown = await http.post("/oauth/revoke", data={"token": "not-a-token"}, auth=(alice.client_id, alice.secret))
    assert unknown.status_code == 200
    by_alice = await http.post("/oauth/revoke", data={"token": token}, auth=(alice.client_id, alice.secret))
    assert by_alice.status_code == 200
    refused = await http.get("/api/v1/whoami", headers=bearer)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    status = await http.post("/oauth/introspect", data={"token": token}, auth=(alice.client_id, alice.secret))
    assert status.json() == {"active": False}


async def test_metadata_and_jwks(http: httpx.AsyncClient, services: Services) -> None:
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == TOKEN_URL
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    assert "service-requests:read-personal" in meta["scopes_supported"]
    keys = (await http.get(meta["jwks_uri"].removeprefix(ISSUER))).json()["keys"]
    assert {key["kid"] for key in keys} >= {services.keys.signer("access-token").kid}
    assert all("d" not in key for key in keys), "private key material must never be published"


async def test_key_rotation_publishes_before_signing_and_keeps_old_key(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    who = await register()
    old = services.keys.signer("access-token")
    old_token = await get_token(http, who)
    new = await services.keys.rotate("access-token", lead=300)
    published = {key["kid"] for key in (await http.get("/oauth/jwks")).json()["keys"]}
    assert {old.kid, new.kid} <= published
    assert services.keys.signer("access-token").kid == old.kid, "a pending key must not sign yet"
    later = time.time() + 301
    assert services.keys.signer("access-token", now=later).kid == new.kid
    ttl = services.settings.access_token_ttl + services.settings.clock_leeway
    kids_then = {key.kid for key in services.keys.published(now=later)}
    assert old.kid in kids_then, "the old key stays while its tokens may still be alive"
    gone = {key.kid for key in services.keys.published(now=new.activates_at + ttl + 1)}
    assert old.kid not in gone
    assert (await http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {old_token}"})).status_code == 200
    # Signing with the new key takes effect once active; tokens from both keys verify during the overlap.
    immediate = await services.keys.rotate("access-token", lead=0)
    fresh = await get_token(http, who)
    assert jwt.decode(fresh, services.keys.verification_set("access-token")).header["kid"] == immediate.kid
    for token in (old_token, fresh):
        assert (await http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})).status_code == 200
