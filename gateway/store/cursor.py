"""Opaque, tamper-evident keyset cursors.

A cursor carries the last key of a page and a digest of the query it belongs to, signed with the server secret.
Clients treat it as opaque; a cursor that was edited, truncated, or used with other filters is refused with a
400 problem instead of silently returning the wrong page.

    >>> codec = CursorCodec(b"k" * 32)
    >>> token = codec.encode("urn:x:1", {"city": "astana"})
    >>> codec.decode(token, {"city": "astana"})
    'urn:x:1'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from gateway.errors import BadRequest


class InvalidCursor(BadRequest):
    title = "Invalid cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"qala-cursor:" + secret).digest()

    def _query_digest(self, query: dict[str, Any]) -> str:
        return hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def encode(self, last_key: str, query: dict[str, Any]) -> str:
        body = orjson.dumps({"k": last_key, "q": self._query_digest(query)})
        tag = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return _b64(body) + "." + _b64(tag)

    def decode(self, token: str, query: dict[str, Any]) -> str:
        """The last key inside ``token``; InvalidCursor when it was tampered with or belongs to another query."""
        try:
            body_part, tag_part = token.split(".", 1)
            body, tag = _unb64(body_part), _unb64(tag_part)
        except (ValueError, TypeError) as exc:
            raise InvalidCursor("the cursor is malformed; use the `next` link of the previous page") from exc
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(tag, expected):
            raise InvalidCursor("the cursor was altered or issued by another hub")
        decoded = orjson.loads(body)
        if decoded.get("q") != self._query_digest(query):
            raise InvalidCursor("the cursor belongs to a query with other filters")
        return str(decoded["k"])
