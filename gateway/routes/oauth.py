"""The OAuth 2.0 authorization server's endpoints (RFC 8414, 7517, 6749 client credentials, 7662, 7009).

Errors here keep the RFC 6749 section 5.2 ``{error, error_description}`` shape. Every token issued or refused is
written to the audit log.

    curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d scope=service-requests:read \\
         http://127.0.0.1:8000/oauth/token
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.audit import AuditRecord
from gateway.client_auth import ASSERTION_ALGS as ASSERTION_SIGNING_ALGS
from gateway.client_auth import AuthenticatedClient
from gateway.clients import Client, known_scopes
from gateway.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    Unauthorized,
    UnsupportedGrantType,
)
from gateway.guessing import TooManyFailures
from gateway.services import Services, ServicesDep
from gateway.telemetry import current_trace_id
from gateway.tokens import AccessToken

router = APIRouter(tags=["oauth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body; RFC 6749 section 3.2 forbids repeating a parameter."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise InvalidRequest(f"the request body must be {FORM}")
    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the request body is not UTF-8") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        form[name] = value
    return form


def claimed_client_id(request: Request, form: dict[str, str]) -> str | None:
    """Who the request says it is, before authentication: for the audit record of a refusal only."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            return unquote_plus(base64.b64decode(header[6:].strip()).decode().split(":", 1)[0])
        except (binascii.Error, UnicodeDecodeError):
            return None
    return form.get("client_id")


def source_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(request: Request, services: Services, form: dict[str, str]) -> AuthenticatedClient:
    """Authenticate the client, refusing with 429 first while its id or address failed too often."""
    client_id, address = claimed_client_id(request, form), source_address(request)
    try:
        await services.throttle.check(client_id, address)
    except TooManyFailures as exc:
        suppressed = services.refusals.admit(address)
        if suppressed is not None:  # sampled: a flood of refusals must not fill the audit log
            await _audit_token(
                services,
                request,
                action="auth.throttled",
                outcome=exc.error,
                status=exc.status,
                client_id=client_id,
                detail={"source": address, "suppressed": suppressed},
            )
        raise
    try:
        endpoint = services.settings.issuer + request.url.path  # the configured public URL, not the Host header
        return await services.client_auth.authenticate(request.headers.get("authorization"), form, endpoint)
    except InvalidClient:
        await services.throttle.failed(client_id, address)
        raise


def select_scopes(client: Client, requested: str | None) -> list[str]:
    """Down-selection: a client may ask for a subset of its scopes, never more; none asked, its default scopes.

    RFC 6749 section 3.3 lets the server either grant a documented default or fail: the default is the client's
    ``default_scopes`` (unset: every scope it holds), and a client whose default is empty must name its scopes.
    """
    if requested is None or not requested.strip():
        granted = list(client.default_grant)
        if not granted and client.default_scopes is not None:
            raise InvalidScope("this client has no default scope: name the scopes you need in the scope parameter")
        return granted
    asked = list(dict.fromkeys(requested.split()))
    extra = [scope for scope in asked if scope not in client.scopes]
    if extra:
        raise InvalidScope(f"scopes not granted to this client: {' '.join(extra)}")
    return asked


@router.get("/.well-known/oauth-authorization-server")
async def metadata(services: ServicesDep) -> dict[str, Any]:
    """RFC 8414 authorization-server metadata."""
    issuer = services.settings.issuer
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "scopes_supported": sorted(known_scopes()),
        "service_documentation": f"{issuer}/docs",
    }


@router.get("/oauth/jwks")
async def jwks(services: ServicesDep) -> JSONResponse:
    """The public signing keys: pending, active and recently retired ones (RFC 7517)."""
    await services.keys.refresh_if_stale()
    # Cached no longer than a rotated key's lead time, so caches always see a key before it signs.
    max_age = min(300, services.settings.key_publish_lead)
    return JSONResponse(services.keys.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"})


@router.post("/oauth/token")
async def token(request: Request, services: ServicesDep) -> JSONResponse:
    """The client-credentials grant (RFC 6749 section 4.4) issuing RFC 9068 JWT access tokens.

    Form parameters: `grant_type=client_credentials` and, optionally, `scope` (space-separated). A `scope` must
    name scopes the client holds (else `invalid_scope`). Without `scope`, the client gets its **default scopes**
    (RFC 6749 section 3.3), set by the operator per client (`defaultScopes` in the admin API,
    `qala clients default-scopes`): unset, every scope the client holds; an empty list, none, so the request
    fails with `invalid_scope`. The response's `scope` always lists what was granted."""
    form: dict[str, str] = {}
    try:
        form = await read_form(request)
        client = (await authenticate(request, services, form)).client
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequest("grant_type is required")
        if grant_type != "client_credentials":
            raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported; use client_credentials")
        scopes = select_scopes(client, form.get("scope"))
        settings = services.settings
        if settings.rate_limit_enabled:
            decision = await services.limiter.hit(
                f"{client.client_id}:token",
                capacity=settings.token_rate_limit_requests,
                window=settings.rate_limit_window_seconds,
            )
            if not decision.allowed:
                raise _SlowDown(decision.headers())
        await services.keys.refresh_if_stale()
        access_token, claims = services.issuer.issue(client, scopes)
    except OAuthError as exc:
        if isinstance(exc, TooManyFailures):
            raise  # audited (sampled) where it was raised
        refusal = None
        if isinstance(exc, InvalidClient):  # guesses from many addresses: sampled like refused bearer tokens
            suppressed = services.refusals.admit(source_address(request))
            if suppressed is None:
                raise
            refusal = {"source": source_address(request), "suppressed": suppressed}
        await _audit_token(
            services,
            request,
            action="token.refused",
            outcome=exc.error,
            status=exc.status,
            client_id=claimed_client_id(request, form),
            detail=refusal,
        )
        raise
    await _audit_token(
        services,
        request,
        action="token.issued",
        outcome="ok",
        status=200,
        client_id=client.client_id,
        member=client.member,
        detail={"jti": claims["jti"]},
    )
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl,
        "scope": claims["scope"],
    }
    return JSONResponse(body, headers=NO_STORE)


class _SlowDown(OAuthError):
    """Too many token requests: 429 with the RFC 6749 body (there is no registered code; this one is descriptive)."""

    status, error = 429, "slow_down"

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("too many token requests for this client; honour Retry-After", headers=headers)


async def _audit_token(
    services: Services,
    request: Request,
    *,
    action: str,
    outcome: str,
    status: int,
    client_id: str | None,
    member: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    record = AuditRecord(
        action=action,
        outcome=outcome,
        status=status,
        client_id=client_id[:64] if client_id else None,
        member=member,
        method="POST",
        route=request.url.path,
        trace_id=current_trace_id(),
        detail=detail,
    )
    await services.audit.append(record)


async def _own_token(services: Services, token: str, client: Client) -> AccessToken | None:
    """The verified token if this hub issued it to ``client``; otherwise ``None`` (no oracle for other tokens)."""
    try:
        access = await services.verifier.verify(token)
    except Unauthorized:
        return None
    if access.issuer != services.settings.issuer or access.client_id != client.client_id:
        return None
    return access


@router.post("/oauth/introspect")
async def introspect(request: Request, services: ServicesDep) -> JSONResponse:
    """RFC 7662: a client may introspect its own tokens; every other token is ``{"active": false}``."""
    form = await read_form(request)
    client = (await authenticate(request, services, form)).client
    if "token" not in form:
        raise InvalidRequest("token is required")
    access = await _own_token(services, form["token"], client)
    if access is None:
        return JSONResponse({"active": False}, headers=NO_STORE)
    return JSONResponse({"active": True, "token_type": "Bearer", **access.claims}, headers=NO_STORE)


@router.post("/oauth/revoke")
async def revoke(request: Request, services: ServicesDep) -> Response:
    """RFC 7009: 200 whatever the token, but only the owner's tokens are actually revoked."""
    form = await read_form(request)
    client = (await authenticate(request, services, form)).client
    if "token" not in form:
        raise InvalidRequest("token is required")
    access = await _own_token(services, form["token"], client)
    if access is not None:
        await services.revocations.revoke(jti=access.jti, client_id=client.client_id, expires_at=access.expires_at)
        services.verifier.forget(form["token"])
        await _audit_token(
            services,
            request,
            action="token.revoked",
            outcome="ok",
            status=200,
            client_id=client.client_id,
            member=client.member,
            detail={"jti": access.jti},
        )
    return Response(status_code=200, headers=NO_STORE)
