"""Open311 GeoReport v2 servers: pull ``requests.json`` page by page into ServiceRequest entities.

The source is the endpoint's base URL (``https://city.example/open311/v2``) or, for demos and tests, a folder
holding ``requests.json``, served by :class:`~adapters.sources.open311_fixture.Open311Fixture` in process.

Options: ``city`` (tenant code, required), ``page_size`` (default 100; the ``page``/``page_size`` extension),
``start_date`` (ISO 8601; the server's default window is 90 days), ``jurisdiction_id``, ``channel`` (Open311
does not say how a request came in; default ``web``), ``language`` of ``service_name`` (default ``ru``).

    $ qala adapt run open311 examples/legacy/open311-shymkent -o city=shymkent -o start_date=2024-02-01T00:00:00+06:00
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from adapters.errors import MappingError, SourceError, SourceUnavailable
from adapters.mapping import Mapping
from adapters.records import Entity, Position, Reason, Record, Rejection
from adapters.sources.open311_fixture import Open311Fixture

_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]")


def local_id(value: Any) -> str:
    """An identifier made safe for the ``<localId>`` part of a URN.

    >>> local_id("SR 2024/17")
    'SR-2024-17'
    """
    return _UNSAFE.sub("-", str(value)).strip("-.~_") or "x"


def offset_datetime(value: Any, field: str) -> str:
    """An Open311 datetime, which must carry its offset; naive times are refused, not guessed."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{field}: {value!r} has no time-zone offset (Open311 requires one)")
    return moment.isoformat().replace("+00:00", "Z")


class Open311Adapter:
    """Pulls an Open311 GeoReport v2 endpoint; see :mod:`adapters.sources.open311`."""

    name: ClassVar[str] = "open311"
    summary: ClassVar[str] = "Open311 GeoReport v2 server: requests.json with paging and start_date"
    needs_mapping: ClassVar[bool] = False

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if not self.options.get("city"):
            raise MappingError("open311 needs -o city=<tenant code>")
        self.city = self.options["city"]
        self.source = source.rstrip("/")
        self.page_size = int(self.options.get("page_size", 100))
        folder = Path(source)
        transport = httpx.MockTransport(Open311Fixture(folder).handle) if folder.is_dir() else None
        self.base = "http://fixture.invalid" if transport else self.source
        self.http = httpx.Client(transport=transport, timeout=30.0)
        self._pages = 0

    def _page(self, page: int) -> list[Any]:
        params: dict[str, Any] = {"page": page, "page_size": self.page_size}
        for key in ("start_date", "end_date", "jurisdiction_id", "status", "service_code"):
            if self.options.get(key):
                params[key] = self.options[key]
        url = f"{self.base}/requests.json"
        try:
            response = self.http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"cannot reach the Open311 server at {self.source}: {exc}") from exc
        if response.status_code != 200:
            raise SourceError(f"{self.source}: requests.json page {page} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceError(f"{self.source}: requests.json page {page} is not JSON") from exc
        if not isinstance(body, list):
            raise SourceError(f"{self.source}: requests.json page {page} is not a list of requests")
        return body

    def records(self) -> Iterator[Record]:
        number = 0
        page = 1
        try:
            while True:
                items = self._page(page)
                self._pages = page
                for item in items:
                    number += 1
                    yield Record(Position(f"{self.source}/requests.json?page={page}", record=number), item, item)
                if len(items) < self.page_size:
                    return
                page += 1
        finally:
            self.http.close()

    def map(self, record: Record) -> Entity | Rejection:
        item = record.values
        if not isinstance(item, dict) or not item.get("service_request_id"):
            return Rejection([Reason("not-a-request", "no service_request_id in this Open311 record")])
        entity: Entity = {
            "id": f"urn:ngsi-ld:ServiceRequest:{self.city}:{local_id(item['service_request_id'])}",
            "type": "ServiceRequest",
            "city": self.city,
            "source": f"Open311 {self.source}"[:200],
            "serviceRequestId": str(item["service_request_id"]),
            "channel": self.options.get("channel", "web"),
        }
        reasons: list[Reason] = []
        simple = {
            "service_code": "serviceCode",
            "status": "status",
            "status_notes": "statusNotes",
            "description": "description",
            "agency_responsible": "agencyResponsible",
            "service_notice": "serviceNotice",
            "media_url": "mediaUrl",
        }
        for key, target in simple.items():
            if item.get(key) not in (None, ""):
                entity[target] = str(item[key])
        if item.get("service_name"):
            entity["serviceName"] = {self.options.get("language", "ru"): str(item["service_name"])}
        dates = {"requested_datetime": "dateRequested", "updated_datetime": "dateUpdated"}
        dates["expected_datetime"] = "dateExpected"
        for key, target in dates.items():
            if item.get(key):
                try:
                    entity[target] = offset_datetime(item[key], key)
                except ValueError as exc:
                    reasons.append(Reason("invalid-value", str(exc), target))
        if entity.get("status") == "closed" and "dateUpdated" in entity:
            entity["dateClosed"] = entity["dateUpdated"]  # GeoReport: updated_datetime is the close time
        if item.get("lat") not in (None, "") and item.get("long") not in (None, ""):
            try:
                entity["location"] = {"type": "Point", "coordinates": [float(item["long"]), float(item["lat"])]}
            except (TypeError, ValueError):
                reasons.append(Reason("invalid-value", f"lat/long not numbers: {item['lat']!r}, {item['long']!r}"))
        address = {"streetAddress": item.get("address"), "postalCode": item.get("zipcode")}
        if any(address.values()):
            entity["address"] = {k: str(v) for k, v in address.items() if v}
        entity["dateModified"] = entity.get("dateUpdated") or entity.get("dateRequested")
        if entity["dateModified"] is None:
            del entity["dateModified"]
        return Rejection(reasons) if reasons else entity

    def progress(self) -> tuple[int, int | None]:
        return self._pages, None
