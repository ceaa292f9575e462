"""RFC 9068 JWT access tokens: issuing them, and verifying them locally as a resource server.

    issuer = TokenIssuer(settings, keys)
    token, claims = issuer.issue(client, scopes=["service-requests:read"])
    access = await verifier.verify(token)     # raises gateway.errors.Unauthorized with the reason
    access.client_id, access.scopes, access.cities

The verifier pins asymmetric algorithms (``alg: none`` and HS* never verify, whatever key is around), requires
``typ: at+jwt``, an accepted ``iss`` (the hub itself or a configured trusted issuer), the hub's ``aud``,
``exp``/``nbf`` within ``clock_leeway``, and a ``jti`` that is not revoked. Verified tokens are cached until they
expire, so a busy client costs one signature check per token, not per request.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.util import urlsafe_b64decode

from gateway.clients import Client
from gateway.errors import Unauthorized
from gateway.keys import SIGNING_ALG, KeyStore
from gateway.revocation import RevocationList
from gateway.settings import Settings, TrustedIssuer

TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
TRUSTED_ALGS = ("ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519")
"""Asymmetric algorithms accepted from trusted external issuers; the hub itself signs with ES256 only."""
CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class AccessToken:
    """The verified content of an access token."""

    issuer: str
    client_id: str
    subject: str
    jti: str
    scopes: frozenset[str]
    cities: tuple[str, ...]
    member: str | None
    issued_at: int
    expires_at: int
    claims: dict[str, Any] = field(repr=False)
    epoch: int = 0  # the client's token epoch when issued (claim ``client_epoch``; absent means 0)


class TokenIssuer:
    """Mints the hub's access tokens with the current ``access-token`` signing key."""

    def __init__(self, settings: Settings, keys: KeyStore, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.keys = keys
        self.clock = clock

    def issue(self, client: Client, scopes: list[str]) -> tuple[str, dict[str, Any]]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": client.client_id,
            "aud": self.settings.audience,  # the hub API, never the client (an Authlib default this avoids)
            "client_id": client.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.settings.access_token_ttl,
            "jti": secrets.token_hex(16),  # never starts with "-", which `qala clients revoke-token` took for an option
            "scope": " ".join(scopes),
            "cities": list(client.cities),
            "member": client.member,
            "client_epoch": client.token_epoch,  # revoking all of a client's tokens raises its epoch
        }
        if client.read_cities is not None:
            claims["read_cities"] = list(client.read_cities)  # narrows reads; see gateway.auth.Caller
        key = self.keys.signer("access-token")
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg]), claims


def _segment(token: str, index: int) -> dict[str, Any]:
    try:
        value = json.loads(urlsafe_b64decode(token.split(".")[index].encode()))
    except (ValueError, IndexError) as exc:
        raise Unauthorized("the access token is not a well-formed JWT") from exc
    if not isinstance(value, dict):
        raise Unauthorized("the access token is not a well-formed JWT")
    return value


def _epoch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Unauthorized("the access token's client_epoch is not a non-negative integer")
    return value


class TokenVerifier:
    """Resource-server verification of bearer tokens, for the hub's own tokens and trusted issuers' ones."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        revocations: RevocationList,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.revocations = revocations
        self.http = http
        self.clock = clock
        self._trusted = {entry.issuer.rstrip("/"): entry for entry in settings.trusted_issuers}
        self._remote_jwks: dict[str, tuple[float, KeySet]] = {}
        self._cache: dict[str, AccessToken] = {}

    async def verify(self, token: str) -> AccessToken:
        await self.revocations.refresh_if_stale()
        now = self.clock()
        access = self._cache.get(token)
        if access is None:
            access = await self._verify_uncached(token, now)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache = {key: value for key, value in self._cache.items() if value.expires_at > now}
                if len(self._cache) >= CACHE_LIMIT:
                    self._cache.clear()
            self._cache[token] = access
        if now > access.expires_at + self.settings.clock_leeway:
            self._cache.pop(token, None)
            raise Unauthorized("the access token has expired")
        if self.revocations.is_revoked(access.jti):
            raise Unauthorized("the access token has been revoked")
        if access.issuer == self.settings.issuer and self.revocations.is_cut(access.client_id, access.epoch):
            raise Unauthorized("the access token has been revoked (all of its client's tokens were)")
        return access

    async def _verify_uncached(self, token: str, now: float) -> AccessToken:
        if token.count(".") != 2:
            raise Unauthorized("the access token is not a well-formed JWT")
        header = _segment(token, 0)
        unverified = _segment(token, 1)
        if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            raise Unauthorized("the token is not an access token (typ must be at+jwt)")
        issuer = str(unverified.get("iss", "")).rstrip("/")
        if issuer == self.settings.issuer:
            algorithms: tuple[str, ...] = (SIGNING_ALG,)
            key_set = self.keys.verification_set("access-token")
            if header.get("kid") not in {key.kid for key in key_set.keys}:
                await self.keys.refresh_for(str(header.get("kid")))  # another worker may have rotated keys
                key_set = self.keys.verification_set("access-token")
        elif issuer in self._trusted:
            algorithms = TRUSTED_ALGS
            key_set = await self._trusted_keys(self._trusted[issuer], now)
        else:
            raise Unauthorized(f"tokens from issuer {issuer!r} are not accepted here")
        if header.get("alg") not in algorithms:
            raise Unauthorized(f"the token algorithm {header.get('alg')!r} is not accepted")
        try:
            decoded = jwt.decode(token, key_set, algorithms=list(algorithms))
        except JoseError as exc:
            raise Unauthorized("the access token signature does not verify") from exc
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=self.settings.clock_leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.settings.audience},
            exp={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise Unauthorized("the access token has expired") from exc
        except JoseError as exc:
            raise Unauthorized(f"the access token was refused: {exc.description or exc.error}") from exc
        return AccessToken(
            issuer=issuer,
            client_id=str(claims["client_id"]),
            subject=str(claims.get("sub", claims["client_id"])),
            jti=str(claims["jti"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            cities=tuple(str(city) for city in claims.get("cities", ())),
            member=str(claims["member"]) if claims.get("member") is not None else None,
            issued_at=int(claims.get("iat", now)),
            expires_at=int(claims["exp"]),
            claims=claims,
            epoch=_epoch(claims.get("client_epoch", 0)) if issuer == self.settings.issuer else 0,
        )

    async def _trusted_keys(self, entry: TrustedIssuer, now: float) -> KeySet:
        if entry.jwks is not None:
            return KeySet.import_key_set(entry.jwks)  # type: ignore[arg-type]
        cached = self._remote_jwks.get(entry.issuer)
        if cached is not None and cached[0] > now:
            return cached[1]
        assert entry.jwks_uri is not None  # guaranteed by TrustedIssuer's validator
        try:
            http = self.http or httpx.AsyncClient(timeout=5.0)
            response = await http.get(entry.jwks_uri)
            response.raise_for_status()
            key_set = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, JoseError, ValueError) as exc:
            raise Unauthorized(f"the keys of issuer {entry.issuer!r} could not be fetched") from exc
        self._remote_jwks[entry.issuer] = (now + self.settings.jwks_cache_seconds, key_set)
        return key_set

    def forget(self, token: str) -> None:
        self._cache.pop(token, None)
