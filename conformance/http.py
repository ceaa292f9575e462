"""An HTTP client that keeps every exchange as evidence, with tokens and secrets redacted before storage.

The runner opens one :class:`RecordingClient` per run and points its recorder at the current test, so each
result carries exactly the exchanges its test made. Transport failures (refused connection, timeout) are the
module's: they are recorded and re-raised as :class:`ModuleUnreachable`, which the runner reports as a failure.

    >>> redact_text("Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    'Authorization: Bearer [REDACTED]'
    >>> redact_headers({"Authorization": "Bearer abc", "Accept": "application/json"})
    {'authorization': 'Bearer [REDACTED]', 'accept': 'application/json'}
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from conformance.results import Exchange

BODY_EXCERPT = 4000
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "dpop"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+")
_SECRET_PARAM = re.compile(r"(?i)\b(access_token|client_secret|token|password|client_assertion)=([^&\s\"]+)")


class ModuleUnreachable(Exception):
    """The module did not answer (connection refused, timeout, broken response)."""


def redact_text(text: str) -> str:
    """Remove anything that looks like a bearer token, a JWT or a secret parameter."""
    text = _BEARER.sub(r"\1 [REDACTED]", text)
    text = _JWT.sub("[REDACTED]", text)
    return _SECRET_PARAM.sub(r"\1=[REDACTED]", text)


def redact_headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower()
        if key in SECRET_HEADERS:
            scheme = str(value).split(" ", 1)[0] if " " in str(value) else ""
            out[key] = f"{scheme} [REDACTED]".strip()
        else:
            out[key] = redact_text(str(value))
    return out


def _excerpt(content: bytes) -> str:
    text = content[: BODY_EXCERPT * 4].decode("utf-8", errors="replace")
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + f"… [{len(content)} bytes in all]"
    return redact_text(text)


class RecordingClient:
    """A synchronous ``httpx.Client`` wrapper that appends an :class:`Exchange` to ``recording`` per request.

    client = RecordingClient("http://127.0.0.1:9000", timeout=10)
    client.recording = result_evidence          # the runner does this per test
    response = client.request("GET", "/service-requests", headers={"Authorization": "Bearer ..."})
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self.recording: list[Exchange] = []

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | list[tuple[str, str | int | float | bool | None]] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        request = self._client.build_request(
            method, self.url(path), headers=headers, params=params, json=json, content=content
        )
        started = time.perf_counter()
        try:
            try:
                response = self._client.send(request)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a kept-alive connection the module closed after its previous answer (a server that crashed
                # closes it): that failure belongs to the previous request, so send this one again, once
                response = self._client.send(request)
            response.read()
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self.recording.append(self._exchange(request, None, elapsed, f"{type(exc).__name__}: {exc}"))
            raise ModuleUnreachable(f"{method} {request.url} got no answer: {type(exc).__name__}: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        self.recording.append(self._exchange(request, response, elapsed))
        return response

    @staticmethod
    def _exchange(request: httpx.Request, response: httpx.Response | None, elapsed: float, error: str = "") -> Exchange:
        return Exchange(
            method=request.method,
            url=redact_text(str(request.url)),
            request_headers=redact_headers(request.headers),
            request_body=_excerpt(request.content) if request.content else "",
            status=response.status_code if response is not None else None,
            response_headers=redact_headers(response.headers) if response is not None else {},
            response_body=_excerpt(response.content) if response is not None else "",
            elapsed_ms=round(elapsed, 1),
            error=redact_text(error),
        )

    def close(self) -> None:
        self._client.close()
