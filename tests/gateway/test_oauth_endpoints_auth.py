"""Client authentication at the introspection and revocation endpoints, as Authlib's client performs it, and the
RFC 8414 metadata that announces it."""

from __future__ import annotations

import time
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.client_auth import ASSERTION_TYPE
from tests.gateway.conftest import ISSUER


async def key_client(register: Any) -> tuple[Any, ECKey]:
    key = ECKey.generate_key("P-256")
    public = {"keys": [{**key.as_dict(private=False), "kid": "k1"}]}
    who = await register(jwks=public, with_secret=False)
    return who, ECKey.import_key({**key.as_dict(private=True), "kid": "k1"})


async def test_metadata_announces_signing_algorithms_wherever_private_key_jwt_is_offered(
    http: httpx.AsyncClient,
) -> None:
    """RFC 8414 section 2: an endpoint offering private_key_jwt MUST list the algorithms it accepts."""
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    for endpoint in ("token", "introspection", "revocation"):
        assert "private_key_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        algorithms = metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert "ES256" in algorithms
        assert "none" not in algorithms


async def test_authlib_introspects_and_revokes_with_assertions_addressed_to_those_endpoints(
    app: FastAPI, register: Any
) -> None:
    who, private = await key_client(register)
    # No token_endpoint given: Authlib addresses each assertion to the URL it is sent to.
    async with AsyncOAuth2Client(
        who.client_id,
        private,
        token_endpoint_auth_method=PrivateKeyJWT(alg="ES256"),
        revocation_endpoint_auth_method=PrivateKeyJWT(alg="ES256"),
        transport=httpx.ASGITransport(app=app),
        base_url=ISSUER,
    ) as client:
        token = await client.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")
        introspected = await client.introspect_token(f"{ISSUER}/oauth/introspect", token=token["access_token"])
        assert introspected.status_code == 200, introspected.text
        assert introspected.json()["active"] is True
        revoked = await client.revoke_token(f"{ISSUER}/oauth/revoke", token=token["access_token"])
        assert revoked.status_code == 200, revoked.text


async def test_an_assertion_for_one_endpoint_is_refused_at_another(http: httpx.AsyncClient, register: Any) -> None:
    who, private = await key_client(register)
    now = int(time.time())
    claims = {
        "iss": who.client_id,
        "sub": who.client_id,
        "aud": f"{ISSUER}/oauth/revoke",
        "exp": now + 60,
        "iat": now,
        "jti": f"x{now}",
    }
    assertion = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, private)
    form = {"token": "anything", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    response = await http.post("/oauth/introspect", data=form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
