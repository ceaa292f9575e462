"""Absolute links the hub hands out (``next`` pages, ``Location``), built on its configured public URL.

A link built from the request would carry whatever ``Host`` header the client sent: a cache or proxy in front of
the hub could then serve another client a ``next`` link to an attacker's host. The issuer URL (``QALA_ISSUER``)
is the hub's public address, so links are built on it and the ``Host`` header is never reflected.

    >>> public_link("https://hub.example.kz/", "/api/v1/service-requests", {"limit": "2"})
    'https://hub.example.kz/api/v1/service-requests?limit=2'
    >>> path_segment("urn:ngsi-ld:ServiceRequest:astana:SR-1")
    'urn%3Angsi-ld%3AServiceRequest%3Aastana%3ASR-1'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from fastapi import Request

_RESERVED = re.compile(r"[^A-Za-z0-9_.~-]")
_ESCAPES = {chr(code): f"%{code:02X}" for code in range(128)}


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def path_segment(text: str) -> str:
    """``quote(text, safe="")``: ``text`` as one path segment, every character but the unreserved ones escaped.

    An ASCII text has its few reserved characters replaced by a regular expression (~1.4 us for an entity id, where
    ``quote`` took ~2.7 escaping it byte by byte); any other goes to ``quote`` itself, which escapes UTF-8 bytes."""
    return _RESERVED.sub(_escape, text) if text.isascii() else quote(text, safe="")


def public_link(base: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """``base`` (the public URL, with or without a trailing slash) joined with ``path`` and ``query``."""
    link = base.rstrip("/") + "/" + path.lstrip("/")
    return f"{link}?{urlencode(dict(query))}" if query else link


def request_link(request: Request, query: Mapping[str, str] | None = None, path: str | None = None) -> str:
    """The public link to this request's path (or ``path``), with ``query``; the base is the hub's issuer URL."""
    base: str = request.app.state.settings.issuer
    raw_path = path if path is not None else request.scope.get("raw_path", b"").decode("latin-1")
    return public_link(base, raw_path or request.url.path, query)
