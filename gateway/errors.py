"""The gateway's exceptions and the one place that turns them into HTTP responses.

Every error a client can see is an RFC 9457 problem (``application/problem+json``) with a stable ``type`` URI,
except at the OAuth endpoints, where RFC 6749 section 5.2 fixes the ``{error, error_description}`` shape.

Exception tree::

    GatewayError                     500  internal
    ├── BadRequest                   400  bad-request
    │   └── ValidationFailed         422  validation-failed (carries ``errors``)
    ├── Unauthorized                 401  invalid-token (``WWW-Authenticate: Bearer``)
    ├── Forbidden                    403  forbidden
    │   ├── InsufficientScope        403  insufficient-scope (``WWW-Authenticate: Bearer``)
    │   └── CityNotAllowed           403  city-not-allowed
    ├── NotFound                     404  not-found
    ├── MethodNotAllowed             405  method-not-allowed
    ├── Conflict                     409  conflict
    ├── PreconditionFailed           412  precondition-failed
    ├── PayloadTooLarge              413  payload-too-large
    ├── RateLimited                  429  rate-limited (``Retry-After``)
    ├── ServiceUnavailable           503  unavailable
    └── OAuthError                   400  RFC 6749 body, not a problem
        ├── InvalidRequest           400  invalid_request
        ├── InvalidClient            401  invalid_client
        ├── InvalidGrant             400  invalid_grant
        ├── UnauthorizedClient       400  unauthorized_client
        ├── UnsupportedGrantType     400  unsupported_grant_type
        └── InvalidScope             400  invalid_scope

Raising is all a route does:

    >>> raise NotFound("no client 'qc_x'")
    Traceback (most recent call last):
    ...
    gateway.errors.NotFound: no client 'qc_x'
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

PROBLEM_BASE = "https://qala.kz/problems/"
PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("qala.gateway")


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            problem["instance"] = instance
        if self.errors is not None:
            problem["errors"] = self.errors
        return problem

    def response(self, instance: str | None = None) -> Response:
        return JSONResponse(self.body(instance), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON)


class BadRequest(GatewayError):
    status, slug, title = 400, "bad-request", "Bad request"


class ValidationFailed(BadRequest):
    """The request was well-formed but its content is invalid; ``errors`` lists ``{pointer, keyword, message}``."""

    status, slug, title = 422, "validation-failed", "Validation failed"


def _bearer_challenge(error: str, description: str) -> str:
    safe = description.replace("\\", "\\\\").replace('"', "'")
    return f'Bearer realm="qala", error="{error}", error_description="{safe}"'


class Unauthorized(GatewayError):
    """A missing, malformed, expired, revoked or otherwise unacceptable bearer token."""

    status, slug, title = 401, "invalid-token", "Invalid or missing access token"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750 section 3.1: a request with no token at all gets a challenge without an error code.
        challenge = _bearer_challenge(error, detail) if error else 'Bearer realm="qala"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(GatewayError):
    status, slug, title = 403, "forbidden", "Forbidden"


class InsufficientScope(Forbidden):
    slug, title = "insufficient-scope", "Insufficient scope"

    def __init__(self, scope: str) -> None:
        detail = f"this call needs the scope {scope!r}"
        super().__init__(detail, headers={"WWW-Authenticate": _bearer_challenge("insufficient_scope", detail)})
        self.headers["WWW-Authenticate"] += f', scope="{scope}"'


class CityNotAllowed(Forbidden):
    slug, title = "city-not-allowed", "City not allowed"


class NotFound(GatewayError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(GatewayError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(GatewayError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(GatewayError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(GatewayError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class RateLimited(GatewayError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(GatewayError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class OAuthError(GatewayError):
    """An RFC 6749 section 5.2 error: the body is ``{error, error_description}``, never a problem document."""

    status = 400
    error: ClassVar[str] = "invalid_request"

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.detail}

    def response(self, instance: str | None = None) -> Response:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **self.headers}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    status, error = 401, "invalid_client"

    def __init__(self, detail: str) -> None:
        # RFC 6749 section 5.2 asks for a Basic challenge when Basic was used, and RFC 9110 for a challenge on
        # every 401; Basic is the method a client without credentials is most likely to try.
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="qala"'})


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


_HTTP_STATUS: dict[int, type[GatewayError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _pointer(location: tuple[Any, ...]) -> str:
    # FastAPI locations start with where the value came from ("body", "query", ...); a pointer is into that part.
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location[1:]]
    return "/" + "/".join(parts)


def _from_validation(exc: RequestValidationError) -> ValidationFailed:
    errors = [
        {"pointer": _pointer(tuple(item.get("loc", ()))), "keyword": str(item.get("type", "")), "message": item["msg"]}
        for item in exc.errors()
    ]
    sources = sorted({str(item.get("loc", ("request",))[0]) for item in exc.errors()})
    return ValidationFailed(f"the request {' and '.join(sources)} failed validation", errors=errors)


def as_gateway_error(exc: Exception) -> GatewayError:
    """Translate any exception reaching the app boundary into the gateway's tree."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _from_validation(exc)
    if isinstance(exc, StarletteHTTPException):
        kind = _HTTP_STATUS.get(exc.status_code, GatewayError)
        detail = exc.detail if isinstance(exc.detail, str) else kind.title
        error = kind(detail) if kind is not Unauthorized else Unauthorized(detail, error=None)
        error.headers.update(exc.headers or {})
        return error
    # Never leak a stack trace or exception text: the details go to the server log only.
    logger.exception("unhandled error", exc_info=exc)
    return GatewayError("the server failed to handle this request; it has been logged")


async def handle_error(request: Request, exc: Exception) -> Response:
    """The single exception handler of the app."""
    return as_gateway_error(exc).response(instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    for kind in (GatewayError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle_error)
