"""Open, read-only CORS for the open data: any origin may read the CKAN API, DCAT and downloads from a browser.

Routers opt in with ``APIRouter(route_class=OpenReadRoute)``: every response their handlers return says
``Access-Control-Allow-Origin: *``, and :func:`preflight` answers ``OPTIONS`` with GET and HEAD only, so a
browser page elsewhere can read but never send a token or write (CKAN's writes need POST with credentials).

    >>> sorted(OPEN_HEADERS)
    ['Access-Control-Allow-Origin', 'Access-Control-Expose-Headers']
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

OPEN_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Disposition, Content-Length, ETag, Link",
}
PREFLIGHT_HEADERS = {
    **OPEN_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Accept, Accept-Language",
    "Access-Control-Max-Age": "86400",
}


class OpenReadRoute(APIRoute):
    """A route whose responses may be read from any origin."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def open_handler(request: Request) -> Response:
            response = await handler(request)
            response.headers.update(OPEN_HEADERS)
            return response

        return open_handler


async def preflight(request: Request) -> Response:
    """The answer to a CORS preflight: reading is allowed from anywhere, nothing else is."""
    return Response(status_code=204, headers=PREFLIGHT_HEADERS)
