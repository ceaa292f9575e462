"""Refuse request bodies larger than ``max_body_bytes`` with a 413 problem.

Both the declared ``Content-Length`` and the bytes actually streamed are checked, because a chunked request
declares nothing and a lying client declares too little.

    >>> from fastapi import FastAPI
    >>> app = BodyLimitMiddleware(FastAPI(), max_body_bytes=1024)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PayloadTooLarge


class _BodyTooLarge(Exception):
    """Raised inside ``receive`` to stop the app reading; never escapes the middleware."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.per_path = per_path or {}  # e.g. the NDJSON batch endpoint takes far larger bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.max_body_bytes)
        declared = _declared_length(scope["headers"])
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refusal(limit, scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app answers after the limit broke is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _refusal(limit, scope, receive, send)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The last ``Content-Length`` of ``headers``, as ``dict(headers)`` would keep it, without building the dict."""
    declared = None
    for name, value in headers:
        if name == b"content-length":
            declared = value
    return declared


async def _refusal(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    problem = PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
    await problem.response(scope["path"])(scope, receive, send)
