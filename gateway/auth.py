"""The resource-server side: who is calling, and may they?

Routes declare what they need; the dependency verifies the bearer token locally (no call to the authorization
server), applies the caller's rate limit and records the caller for the audit log:

    @router.post("/service-requests")
    async def create(caller: Annotated[Caller, Depends(require_scope("service-requests:write"))], ...):
        caller.check_city(entity["city"])          # 403 city-not-allowed otherwise

A missing or bad token is a 401 problem with ``WWW-Authenticate: Bearer error="invalid_token"``; a missing scope
is a 403 with ``error="insufficient_scope"``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security.base import SecurityBase
from joserfc.util import urlsafe_b64decode

from gateway.clients import ALL_CITIES, Client
from gateway.errors import CityNotAllowed, InsufficientScope, Unauthorized
from gateway.services import Services, get_services


@dataclass(frozen=True)
class Caller:
    """The verified client behind a request."""

    client_id: str
    member: str | None
    scopes: frozenset[str]
    cities: tuple[str, ...]
    issuer: str
    jti: str
    expires_at: int
    read_cities: tuple[str, ...] | None = None
    """The cities whose entities this client may read at all; None: public fields of every city."""

    @classmethod
    def standing(cls, client: Client) -> Caller:
        """What ``client`` may do when the hub acts for it with no request in hand (webhook deliveries): its
        registered scopes and cities, under the same rules as its tokens."""
        return cls(
            client.client_id,
            client.member,
            frozenset(client.scopes),
            client.cities,
            issuer="",
            jti="",
            expires_at=0,
            read_cities=client.read_cities,
        )

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def may_touch(self, city: str) -> bool:
        return ALL_CITIES in self.cities or city in self.cities

    def may_read(self, city: str) -> bool:
        """Whether entities of ``city`` are readable at all (their public fields): open unless narrowed."""
        return self.read_cities is None or ALL_CITIES in self.read_cities or city in self.read_cities

    def may_read_personal(self, collection: str, city: str) -> bool:
        """Personal fields need the collection's ``read-personal`` scope *and* a city of the client's own."""
        return self.has_scope(f"{collection}:read-personal") and self.may_touch(city) and self.may_read(city)

    def check_read(self, city: str) -> None:
        """Raise a 403 problem unless this client may read entities of ``city``."""
        if not self.may_read(city):
            raise CityNotAllowed(f"client {self.client_id!r} may not read city {city!r}")

    def check_city(self, city: str) -> None:
        """Raise a 403 problem unless this client may act on ``city``."""
        if not self.may_touch(city):
            raise CityNotAllowed(f"client {self.client_id!r} may not act on city {city!r}")

    def as_json(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "member": self.member,
            "scopes": sorted(self.scopes),
            "cities": list(self.cities),
            "issuer": self.issuer,
            "tokenId": self.jti,
            "expiresAt": self.expires_at,
            "readCities": list(self.read_cities) if self.read_cities is not None else None,
        }


@dataclass(frozen=True)
class AuthRefusal:
    """A presented bearer token that was refused: why, and the client it claimed to be (unverified)."""

    reason: str
    claimed_client_id: str | None


def claimed_client_id(token: str) -> str | None:
    """The ``client_id`` a token claims, unverified: for the audit record of its refusal only."""
    try:
        value = json.loads(urlsafe_b64decode(token.split(".")[1].encode())).get("client_id")
    except (ValueError, IndexError, AttributeError):
        return None
    return value[:64] if isinstance(value, str) else None


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("an access token is required: send Authorization: Bearer <token>", error=None)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must use the Bearer scheme")
    return token.strip()


class BearerToken(SecurityBase):
    """The access token of ``Authorization: Bearer``, declared to OpenAPI as the ``oauth2`` scheme.

    FastAPI reads this dependency to put ``security`` on every operation that needs a token (with the scopes of
    :func:`require_scope`), so Swagger UI and generated clients send one. The scheme's token URL is completed by
    the hub's document (:mod:`gateway.routes.documents`), which knows the configured issuer."""

    def __init__(self) -> None:
        flow = OAuthFlowClientCredentials(tokenUrl="/oauth/token", scopes={})
        self.model = OAuth2Model(flows=OAuthFlows(clientCredentials=flow))
        self.scheme_name = "oauth2"

    async def __call__(self, request: Request) -> str:
        return bearer_token(request)


bearer = BearerToken()


async def authenticate(
    request: Request,
    response: Response,
    services: Annotated[Services, Depends(get_services)],
    token: Annotated[str, Depends(bearer)],
) -> Caller:
    """Verify the bearer token and apply the per-client rate limit."""
    caller, limits = await _verified(request, services, token)
    response.headers.update(limits)
    return caller


async def authorize(request: Request, scope: str) -> tuple[Caller, dict[str, str]]:
    """What a route declaring ``Depends(require_scope(scope))`` gets, for a hot route that declares no dependency:
    the verified caller, and the rate-limit headers its response carries (FastAPI adds a dependency's headers to
    the returned response only, so they go on a successful answer, never on an error). Raises the same problems
    in the same order: a missing or bad token (401), the rate limit (429), the scope (403).

        caller, limits = await authorize(request, "service-requests:read")
        response.headers.raw.extend(Headers(limits).raw)

    FastAPI's dependency resolution cost such a route about as much as the rest of its request together
    (``bench/http_load.py``); the collection routes (:mod:`gateway.routes.collections`) call this instead."""
    services: Services = request.app.state.services
    caller, limits = await _verified(request, services, bearer_token(request))
    if not caller.has_scope(scope):
        raise InsufficientScope(scope)
    return caller, limits


async def _verified(request: Request, services: Services, token: str) -> tuple[Caller, dict[str, str]]:
    """The caller behind ``token`` once its rate limit admitted it, and the rate-limit headers to answer with."""
    try:
        access = await services.verifier.verify(token)
    except Unauthorized as exc:
        # The audit middleware records the refusal (sampled per source), after the response is sent.
        request.state.auth_refused = AuthRefusal(exc.detail, claimed_client_id(token))
        raise
    caller = Caller(
        client_id=access.client_id,
        member=access.member,
        scopes=access.scopes,
        cities=access.cities,
        issuer=access.issuer,
        jti=access.jti,
        expires_at=access.expires_at,
        read_cities=_read_cities(access.claims),
    )
    request.state.caller = caller
    settings = services.settings
    if not settings.rate_limit_enabled:
        return caller, {}
    # Keyed by the stable client identity (issuer-qualified for external issuers), never by IP or worker.
    identity = caller.client_id if caller.issuer == settings.issuer else f"{caller.issuer}|{caller.client_id}"
    decision = await services.limiter.hit(
        f"{identity}:api", capacity=settings.rate_limit_requests, window=settings.rate_limit_window_seconds
    )
    decision.enforce()
    return caller, decision.headers()


def _read_cities(claims: dict[str, Any]) -> tuple[str, ...] | None:
    value = claims.get("read_cities")
    if not isinstance(value, list):
        return None  # tokens of trusted issuers carry no narrowing
    return tuple(str(city) for city in value)


CallerDep = Annotated[Caller, Depends(authenticate)]


def require_scope(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency admitting callers whose token carries ``scope``.

    >>> AdminDep = Annotated[Caller, Depends(require_scope("admin"))]
    """

    # A default, not an Annotated alias: annotations are strings here and could not see ``scope``.
    async def dependency(caller: Caller = Security(authenticate, scopes=[scope])) -> Caller:  # noqa: B008
        if not caller.has_scope(scope):
            raise InsufficientScope(scope)
        return caller

    return dependency
