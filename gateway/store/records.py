"""What the store hands back: an entity with the hub's metadata about it, and the outcome of a write."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

JsonObject = dict[str, Any]


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Publisher:
    """The client (and its member organisation) recorded as the source of what it writes."""

    client_id: str
    member: str | None


@dataclass(frozen=True, slots=True)
class StoredEntity:
    id: str
    type: str
    collection: str
    city: str
    payload: JsonObject | None
    """None for a deleted entity (a tombstone in the change feed)."""
    version: int
    seq: int
    received_at: float
    client_id: str
    member: str | None
    schema_version: str

    @property
    def deleted(self) -> bool:
        return self.payload is None

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def content_hash(entity: JsonObject) -> str:
    """SHA-256 of the entity's canonical JSON (sorted keys): equal content, equal hash."""
    return hashlib.sha256(orjson.dumps(entity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def posix_seconds(value: Any) -> float | None:
    """An RFC 3339 date-time as POSIX seconds; None when absent or unparseable (the schema guards the rest)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def bounding_box(entity: JsonObject) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of the entity's GeoJSON ``location``, if it has one."""
    location = entity.get("location")
    if not isinstance(location, dict):
        return None
    if location.get("type") == "Point":  # nearly every entity: no walk needed
        lon, lat = location["coordinates"][:2]
        return lon, lat, lon, lat
    positions: list[list[float]] = []

    def collect(node: Any) -> None:
        if isinstance(node, list) and len(node) >= 2 and all(isinstance(v, (int, float)) for v in node[:2]):
            positions.append(node)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(location.get("coordinates"))
    if not positions:
        return None
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    return min(lons), min(lats), max(lons), max(lats)
