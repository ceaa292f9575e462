"""Access-token verification against one trusted issuer, as RFC 9068 section 4 asks of a resource server.

verifier = TokenVerifier(issuer="http://127.0.0.1:8765", jwks_url=".../oauth/jwks", audience="http://me")
access = await verifier.verify(token, http)        # raises Problem(401) with the reason
access.scopes, access.cities
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from examples.vendor_module.problems import Problem

ALGORITHMS = ["ES256"]
TOKEN_TYPES = ("at+jwt", "application/at+jwt")
LEEWAY = 30
JWKS_REFETCH_SECONDS = 5.0


@dataclass(frozen=True)
class Access:
    client_id: str
    scopes: frozenset[str]
    cities: tuple[str, ...]


def unauthorized(detail: str, error: str | None = "invalid_token") -> Problem:
    challenge = f'Bearer error="{error}", error_description="{detail}"' if error else 'Bearer realm="vendor"'
    return Problem(401, "invalid-token", detail, headers={"WWW-Authenticate": challenge})


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError:
        raise unauthorized("the token is not a well-formed JWT") from None
    if not isinstance(value, dict):
        raise unauthorized("the token is not a well-formed JWT")
    return value


def _decode_with(token: str, key: Any, algorithms: list[str]) -> dict[str, Any]:
    try:
        return dict(jwt.decode(token, key, algorithms=algorithms).claims)
    except (JoseError, ValueError) as exc:
        raise unauthorized("the token signature does not verify") from exc


class _NoExpiry(jwt.JWTClaimsRegistry):
    def validate_exp(self, value: object) -> None:  # the "ignores expiry" defect
        return None


class TokenVerifier:
    """Verifies tokens of one issuer; ``accept_none``, ``ignore_expiry`` and ``defects`` switch on defects for the
    suite's tests (``optional-exp``, ``trust-header-jwk``, ``hs256-public-key``)."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str,
        audience: str,
        *,
        accept_none: bool = False,
        ignore_expiry: bool = False,
        defects: frozenset[str] = frozenset(),
    ) -> None:
        self.issuer, self.jwks_url, self.audience = issuer.rstrip("/"), jwks_url, audience
        self.accept_none, self.ignore_expiry, self.defects = accept_none, ignore_expiry, defects
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    async def _key_set(self, kid: object, http: httpx.AsyncClient) -> KeySet:
        known = self._keys is not None and any(key.kid == kid for key in self._keys.keys)
        if (not known and time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS) or self._keys is None:
            try:
                response = await http.get(self.jwks_url)
                response.raise_for_status()
                self._keys = KeySet.import_key_set(response.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                raise Problem(503, "issuer-unavailable", f"cannot fetch the issuer's keys: {exc}") from exc
            self._fetched_at = time.monotonic()
        return self._keys

    @staticmethod
    def _decode(token: str, key: Any, algorithms: list[str] | None = None) -> dict[str, Any]:
        return _decode_with(token, key, algorithms or ALGORITHMS)

    async def verify(self, token: str, http: httpx.AsyncClient) -> Access:
        if token.count(".") != 2:
            raise unauthorized("the token is not a well-formed JWT")
        header = _segment(token, 0)
        if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            raise unauthorized("the token is not an access token (typ must be at+jwt)")
        if self.accept_none and header.get("alg") == "none":
            claims = _segment(token, 1)
        elif "trust-header-jwk" in self.defects and isinstance(header.get("jwk"), dict):
            claims = self._decode(token, KeySet([ECKey.import_key(header["jwk"])]))
        elif "hs256-public-key" in self.defects and header.get("alg") == "HS256":
            keys = await self._key_set(header.get("kid"), http)
            pem = keys.keys[0].public_key.public_bytes(  # type: ignore[union-attr]
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            # the confused verifier: HMAC with the public key's PEM as the secret (joserfc itself refuses this)
            signing_input, _, signature = token.rpartition(".")
            expected = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(expected.rstrip(b"=").decode(), signature):
                raise unauthorized("the token signature does not verify")
            claims = _segment(token, 1)
        else:
            if header.get("alg") not in ALGORITHMS:
                raise unauthorized(f"the algorithm {header.get('alg')!r} is not accepted")
            keys = await self._key_set(header.get("kid"), http)
            try:
                claims = jwt.decode(token, keys, algorithms=ALGORITHMS).claims
            except JoseError as exc:
                raise unauthorized("the token signature does not verify") from exc
        registry_class = _NoExpiry if self.ignore_expiry else jwt.JWTClaimsRegistry
        registry = registry_class(
            leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": "optional-exp" not in self.defects},
            client_id={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise unauthorized(f"the token was refused: {exc.description or exc.error}") from exc
        cities = claims.get("cities", [])
        return Access(
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            cities=tuple(str(city) for city in cities) if isinstance(cities, list) else (),
        )
