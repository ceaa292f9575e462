"""Input hardening: what no value reaching the hub may carry, checked once at the edge.

PostgreSQL cannot store U+0000 in text or JSONB, and a JSON document nested a thousand levels deep makes a
recursive validator raise ``RecursionError``; both used to become 500s. :class:`InputGuardMiddleware` refuses
them before any route runs, for the path, the query string and every buffered body (JSON, JSON Merge Patch and
urlencoded forms); the NDJSON batch, which streams, checks each line with :func:`json_issue` instead, so one bad
line is that line's result. Integers a client sends are bounded with :func:`bounded_int` before they reach SQL.

    >>> json_issue({"a": ["x\\u0000"]})
    '/a/0: U+0000 (NUL) is not allowed in a string'
    >>> json_issue(orjson_loads("[" * 100 + "]" * 100)) is not None
    True
    >>> bounded_int("10", "limit", 1, 1000)
    10
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BadRequest, GatewayError, InvalidRequest

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted anywhere. A GeoJSON MultiPolygon inside an entity is 6 deep."""
MAX_SQL_INTEGER = 2**63 - 1
"""The largest value a BIGINT (and SQLite's INTEGER) holds; any integer the hub puts into SQL stays below it."""
NUL = "\x00"

JSON_MEDIA = frozenset({"application/json", "application/merge-patch+json", "application/problem+json"})
FORM_MEDIA = "application/x-www-form-urlencoded"
_OAUTH_PREFIX = "/oauth/"


def orjson_loads(text: str | bytes) -> Any:
    """``orjson.loads``, for the doctest above."""
    return orjson.loads(text)


def json_issue(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) is refused, as ``pointer: reason``, or None when it is acceptable.

    Iterative, so that it cannot itself run out of stack on the values it is there to refuse."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, pointer, depth = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                return f"{pointer or '/'}: U+0000 (NUL) is not allowed in a string"
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                return f"{pointer or '/'}: nested deeper than {max_depth} levels"
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                name = str(key)
                if NUL in name:
                    return f"{pointer or '/'}: U+0000 (NUL) is not allowed in a member name"
                stack.append((item, f"{pointer}/{name.replace('~', '~0').replace('/', '~1')}", depth + 1))
    return None


def text_issue(value: str, what: str) -> str | None:
    """Why a decoded text (path, parameter) is refused, or None."""
    return f"U+0000 (NUL) is not allowed in {what}" if NUL in value else None


def bounded_int(raw: str | int, name: str, minimum: int = 0, maximum: int = MAX_SQL_INTEGER) -> int:
    """``raw`` as an integer within [minimum, maximum]; a 400 problem naming ``name`` otherwise.

    >>> bounded_int(str(10**20), "offset")
    Traceback (most recent call last):
    ...
    gateway.errors.BadRequest: offset must be a whole number from 0 to 9223372036854775807, not '100000000000000000000'
    """
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be a whole number from {minimum} to {maximum}, not {str(raw)[:40]!r}")
    return value


def _media(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";", 1)[0].strip().lower()
    return ""


def _query_issue(query: bytes) -> str | None:
    if b"%00" not in query and b"\x00" not in query:
        return None
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    except ValueError:
        return "the query string is malformed"
    for name, value in pairs:
        issue = text_issue(name, "a query parameter name") or text_issue(value, f"query parameter {name!r}")
        if issue:
            return issue
    return None


def _body_issue(media: str, body: bytes) -> str | None:
    if media == FORM_MEDIA:
        if b"%00" not in body and b"\x00" not in body:
            return None
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            issue = text_issue(name, "a form field name") or text_issue(value, f"form field {name!r}")
            if issue:
                return issue
        return None
    if media in JSON_MEDIA or media.endswith("+json"):
        if _plainly_fine(body):
            return None
        try:
            parsed = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError as exc:
            # orjson refuses on its own past 1,024 levels; anything else malformed is the route's to report.
            return "the body is nested too deeply" if "recursion" in str(exc).lower() else None
        issue = json_issue(parsed)
        return f"the JSON body is refused at {issue}" if issue else None
    return None


def _plainly_fine(body: bytes) -> bool:
    """Whether ``body`` cannot hold what :func:`json_issue` refuses, seen from its bytes alone, without parsing.

    In JSON text U+0000 can only be written ``\\u0000`` (a raw NUL is not JSON), and nesting 64 deep takes more
    than 64 opening brackets; a body with none of these needs no walk. The other bodies, which include every one
    where brackets or that escape stand inside strings, take the full check. Nearly every entity is plainly fine,
    and this saves a POST the parse and walk it used to cost. Most bodies hold no backslash at all, and looking
    for one byte is several times faster than looking for the six of that escape."""
    no_escape = b"\\" not in body or b"\\u0000" not in body
    return no_escape and b"\x00" not in body and body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH


class InputGuardMiddleware:
    """Refuse NUL in the path, the query or a buffered body, and over-deep JSON bodies, with a 400.

    At ``/oauth/`` the refusal keeps the RFC 6749 ``invalid_request`` shape; elsewhere it is a problem document.
    Runs inside the body-size limit, so the body it buffers is already bounded. Bodies of other media types (the
    NDJSON batch streams, and checks line by line) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        issue = text_issue(path, "the path") or _query_issue(scope.get("query_string", b""))
        if issue is None and _raw_path_has_nul(scope):
            issue = "U+0000 (NUL) is not allowed in the path"
        media = _media(scope)
        buffered: list[Message] | None = None
        if issue is None and (media == FORM_MEDIA or media in JSON_MEDIA or media.endswith("+json")):
            buffered, body = await _read_all(receive)
            issue = _body_issue(media, body)
        if issue is not None:
            error: GatewayError = InvalidRequest(issue) if path.startswith(_OAUTH_PREFIX) else BadRequest(issue)
            await error.response(path)(scope, receive, send)
            return
        if buffered is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, _replay(buffered, receive), send)


def _raw_path_has_nul(scope: Scope) -> bool:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or (b"%00" not in raw and b"\x00" not in raw):
        return False  # only a literal NUL or %00 decodes to NUL: most paths need no decoding
    return b"\x00" in unquote_to_bytes(raw)


async def _read_all(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
