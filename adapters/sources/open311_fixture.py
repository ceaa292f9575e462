"""An Open311 GeoReport v2 server in a folder: ``requests.json`` (every request) and ``services.json``.

It answers ``GET …/requests.json`` with ``start_date``, ``end_date``, ``status``, ``page`` and ``page_size`` the
way a real server does, for the demo and the tests; as an ``httpx.MockTransport`` handler or behind any WSGI-ish
loop via :meth:`Open311Fixture.answer`.

    >>> fixture = Open311Fixture(Path("examples/legacy/open311-shymkent"))
    >>> status, body = fixture.answer("/requests.json", {"page": "1", "page_size": "2"})
    >>> status, len(body)
    (200, 2)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson


def _moment(text: str) -> datetime:
    """A stored time; a naive one (a server bug the sample keeps) is read as the server's local time."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("Asia/Almaty"))


class Open311Fixture:
    """Serves the requests of ``folder/requests.json`` as an Open311 endpoint would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _load(self, name: str) -> Any:
        return orjson.loads((self.folder / name).read_bytes())

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        name = path.rsplit("/", 1)[-1]
        if name == "services.json":
            return 200, self._load("services.json")
        if name != "requests.json":
            return 404, [{"code": 404, "description": f"no resource {path}"}]
        try:
            requests: list[dict[str, Any]] = self._load("requests.json")
            page, size = int(query.get("page", 1)), min(int(query.get("page_size", 1000)), 1000)
            start = _moment(query["start_date"]) if "start_date" in query else None
            end = _moment(query["end_date"]) if "end_date" in query else None
        except ValueError as exc:
            return 400, [{"code": 400, "description": str(exc)}]
        selected = [
            r
            for r in requests
            if (start is None or _moment(r["requested_datetime"]) >= start)
            and (end is None or _moment(r["requested_datetime"]) <= end)
            and query.get("status", r.get("status")) == r.get("status")
        ]
        return 200, selected[(page - 1) * size : page * size]

    def handle(self, request: httpx.Request) -> httpx.Response:
        status, body = self.answer(request.url.path, dict(request.url.params))
        return httpx.Response(status, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
