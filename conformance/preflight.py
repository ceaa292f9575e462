"""Before a run: is a module there at all? One clear line instead of a report full of failures.

A dead or mistyped ``--base-url`` used to run the whole suite and fail every requirement. The suite's first step
needs the module's ``/openapi.json`` at the base URL, so the preflight asks for it first:

    check_module("http://127.0.0.1:9000")      # raises ConfigurationError when nothing usable answers
"""

from __future__ import annotations

import httpx

from conformance.errors import ConfigurationError

TIMEOUT_SECONDS = 10.0


def check_module(base_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Raise :class:`ConfigurationError` unless ``<base_url>/openapi.json`` answers an OpenAPI document."""
    url = base_url.rstrip("/") + "/openapi.json"
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, transport=transport) as http:
            response = http.get(url, headers={"Accept": "application/json"})
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"--base-url {base_url!r} is not a URL: {exc}") from exc
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ConfigurationError(f"no module answers at {base_url} ({reason}): is it running?") from exc
    hint = "--base-url is the module's base, where /openapi.json is"
    if response.status_code != 200:
        raise ConfigurationError(f"{url} answered HTTP {response.status_code}: {hint}")
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict) or "openapi" not in document:
        raise ConfigurationError(f"{url} is not an OpenAPI document: {hint}")
