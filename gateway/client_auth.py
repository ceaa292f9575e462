"""Client authentication at the OAuth endpoints: ``client_secret_basic``, ``client_secret_post``, ``private_key_jwt``.

``private_key_jwt`` follows RFC 7523 section 3: ``iss`` and ``sub`` are the client_id, ``aud`` names the hub (its
issuer, its token endpoint URL, or the URL of the endpoint the assertion is sent to: Authlib's clients address an
introspection or revocation request's assertion to that endpoint), ``exp`` is required, and each ``jti`` is
accepted once. Used ``jti`` values are kept in the database until the assertion expires, so a replay to another
worker is refused too.

    authenticator = ClientAuthenticator(engine, directory, settings)
    authenticated = await authenticator.authenticate(request.headers.get("authorization"), form)
    authenticated.client.client_id, authenticated.method
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import sqlalchemy as sa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.util import urlsafe_b64decode
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clients import Client, Directory
from gateway.db import metadata
from gateway.errors import InvalidClient, InvalidRequest
from gateway.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519")
"""Asymmetric only: a client's registered key is public, so an HS* assertion would be forgeable by anyone."""
MAX_ASSERTION_LIFETIME = 3600  # seconds; Authlib's default; bounds how long a used jti must be remembered

used_assertions = sa.Table(
    "used_client_assertions",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("jti", sa.String(256), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


@dataclass(frozen=True)
class AuthenticatedClient:
    client: Client
    method: str  # "client_secret_basic" | "client_secret_post" | "private_key_jwt"


class ClientAuthenticator:
    def __init__(
        self, engine: AsyncEngine, directory: Directory, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self._pruned_at = -1e9

    async def authenticate(
        self, authorization: str | None, form: Mapping[str, str], endpoint: str | None = None
    ) -> AuthenticatedClient:
        """Authenticate the client of a token, introspection or revocation request, or raise ``InvalidClient``.

        ``endpoint`` is the public URL of the endpoint called (from the configured issuer, never the Host header);
        an assertion may name it as its audience."""
        basic = authorization is not None and authorization[:6].lower() == "basic "
        methods = [basic, "client_secret" in form, "client_assertion" in form or "client_assertion_type" in form]
        if sum(methods) > 1:
            raise InvalidRequest("use exactly one client authentication method")
        if basic:
            assert authorization is not None
            client_id, secret = _basic_credentials(authorization)
            if form.get("client_id", client_id) != client_id:
                raise InvalidRequest("client_id in the body differs from the HTTP Basic credentials")
            return AuthenticatedClient(await self._check_secret(client_id, secret), "client_secret_basic")
        if methods[1]:
            client_id = form.get("client_id", "")
            return AuthenticatedClient(await self._check_secret(client_id, form["client_secret"]), "client_secret_post")
        if methods[2]:
            return AuthenticatedClient(await self._check_assertion(form, endpoint), "private_key_jwt")
        raise InvalidClient("client authentication is required")

    async def _check_secret(self, client_id: str, secret: str) -> Client:
        client = await self.directory.find_client(client_id) if client_id else None
        # Same answer and same hashing work for an unknown client and a wrong secret: ids are not enumerable.
        if not self.directory.hasher.matches(secret, client.secret_digest if client else None) or client is None:
            raise InvalidClient("unknown client or wrong secret")
        return _enabled(client)

    async def _check_assertion(self, form: Mapping[str, str], endpoint: str | None) -> Client:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        unverified = _unverified_claims(assertion)
        client_id = str(unverified.get("sub", ""))
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id differs from the assertion's subject")
        client = await self.directory.find_client(client_id) if client_id else None
        if client is None or not client.jwks:
            raise InvalidClient("unknown client, or no public key registered for private_key_jwt")
        now = self.clock()
        try:
            token = jwt.decode(assertion, KeySet.import_key_set(client.jwks), algorithms=list(ASSERTION_ALGS))  # type: ignore[arg-type]
            jwt.JWTClaimsRegistry(
                now=int(now),
                leeway=self.settings.clock_leeway,
                iss={"essential": True, "value": client_id},
                sub={"essential": True, "value": client_id},
                aud={"essential": True, "values": self._audiences(endpoint)},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except JoseError as exc:
            raise InvalidClient(f"client assertion refused: {exc.description or exc.error}") from exc
        expires_at = float(token.claims["exp"])
        if expires_at - now > MAX_ASSERTION_LIFETIME + self.settings.clock_leeway:
            raise InvalidClient(f"client assertion lives longer than {MAX_ASSERTION_LIFETIME} seconds")
        client = _enabled(client)
        await self._spend(client_id, str(token.claims["jti"]), expires_at, now)
        return client

    def _audiences(self, endpoint: str | None) -> list[str]:
        audiences = [self.settings.issuer, self.settings.token_endpoint]
        if endpoint and endpoint not in audiences:
            audiences.append(endpoint)
        return audiences

    async def _spend(self, client_id: str, jti: str, expires_at: float, now: float) -> None:
        try:
            async with self.engine.begin() as conn:
                if now - self._pruned_at > 300:
                    await conn.execute(used_assertions.delete().where(used_assertions.c.expires_at < now - 300))
                    self._pruned_at = now
                await conn.execute(used_assertions.insert().values(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError as exc:
            raise InvalidClient("client assertion already used (jti replay)") from exc


def _enabled(client: Client) -> Client:
    if not client.enabled:
        raise InvalidClient("this client is disabled")
    return client


def _basic_credentials(authorization: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        client_id, secret = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidClient("malformed HTTP Basic credentials") from exc
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def _unverified_claims(assertion: str) -> dict[str, Any]:
    """Peek at the claims to find whose keys to verify with; nothing is trusted until the signature checks."""
    try:
        claims = json.loads(urlsafe_b64decode(assertion.split(".")[1].encode()))
    except (ValueError, IndexError) as exc:
        raise InvalidClient("client_assertion is not a JWT") from exc
    if not isinstance(claims, dict):
        raise InvalidClient("client_assertion is not a JWT")
    if claims.get("iss") != claims.get("sub"):
        raise InvalidClient("client assertion iss and sub must both be the client_id")
    return claims
