"""RFC 9457 problem details: the module's one error type and the one handler that renders it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://vendor.example.kz/problems/"
logger = logging.getLogger("vendor_module")


class Problem(Exception):
    """An error a client sees; ``slug`` makes its stable ``type`` URI.

    >>> Problem(404, "not-found", "no entity 'x'").body()["type"]
    'https://vendor.example.kz/problems/not-found'
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.errors, self.headers = errors, headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.slug.replace("-", " ").capitalize(),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def install(app: FastAPI, *, html: bool = False, drop_status: bool = False) -> None:
    """Render every error as problem details (``html`` renders a web page instead, ``drop_status`` leaves out the
    ``status`` member: defects, for the tests)."""

    def render(problem: Problem) -> Response:
        if html:
            page = f"<html><body><h1>{problem.status}</h1><p>{problem.detail}</p></body></html>"
            return HTMLResponse(page, status_code=problem.status, headers=problem.headers)
        body = {k: v for k, v in problem.body().items() if k != "status"} if drop_status else problem.body()
        return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, Problem):
            return render(exc)
        if isinstance(exc, RequestValidationError):
            return render(Problem(400, "bad-request", "the request parameters are invalid"))
        if isinstance(exc, HTTPException):
            return render(Problem(exc.status_code, "http-error", str(exc.detail), headers=dict(exc.headers or {})))
        logger.exception("unhandled error", exc_info=exc)
        return render(Problem(500, "internal", "the module failed to handle this request"))

    for kind in (Problem, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handle)
