"""What a subscription selects: entity types, cities, equality filters and a bounding box, as a list does.

A selection is checked against the schema registry when it is made, and then decides for each change of the
feed whether it belongs to the subscription. A tombstone (a deleted entity) has no payload left to filter, so
it is sent whenever its type and city are selected: a receiver drops the ids it never held.

    >>> selection = Selection.parse({"types": ["ServiceRequest"], "cities": ["astana"]}, SchemaRegistry.load())
    >>> selection.collections
    ('service-requests',)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.errors import InsufficientScope, ValidationFailed
from gateway.store.records import StoredEntity, bounding_box
from schemas import SchemaRegistry

if TYPE_CHECKING:
    from gateway.auth import Caller

CITY = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
Scalar = str | int | float | bool


def invalid(pointer: str, keyword: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"pointer": pointer, "keyword": keyword, "message": message}])


@dataclass(frozen=True)
class Selection:
    types: tuple[str, ...]
    collections: tuple[str, ...]
    cities: tuple[str, ...] = ()
    filters: dict[str, Scalar] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] | None = None

    @classmethod
    def parse(cls, body: dict[str, Any], registry: SchemaRegistry) -> Selection:
        """The selection in a request body (``types``, ``cities``, ``filters``, ``bbox``); 422 when malformed."""
        types = body.get("types")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise invalid("/types", "minItems", "types must be a non-empty list of entity type names")
        unknown = [name for name in types if not registry.has(name)]
        if unknown:
            raise invalid("/types", "enum", f"unknown type(s): {', '.join(unknown)}")
        schemas = [registry.get(name) for name in dict.fromkeys(types)]
        cities = body.get("cities") or []
        if not isinstance(cities, list) or not all(isinstance(c, str) and CITY.match(c) for c in cities):
            raise invalid("/cities", "pattern", "cities must be a list of city codes such as 'astana'")
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            raise invalid("/filters", "type", "filters must be an object of field: value")
        for name, value in filters.items():
            if not isinstance(value, str | int | float | bool):
                raise invalid(f"/filters/{name}", "type", f"filter {name!r} must be a string, number or boolean")
            missing = [s.type_name for s in schemas if name not in s.filterable_fields]
            if missing:
                raise invalid(f"/filters/{name}", "enum", f"{name!r} is not a filter of {', '.join(missing)}")
        return cls(
            types=tuple(s.type_name for s in schemas),
            collections=tuple(s.collection for s in schemas),
            cities=tuple(dict.fromkeys(cities)),
            filters=dict(filters),
            bbox=_bbox(body.get("bbox")),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "cities": list(self.cities),
            "filters": self.filters,
            "bbox": list(self.bbox) if self.bbox else None,
        }

    def matches(self, change: StoredEntity) -> bool:
        """Whether this change of the feed belongs to the selection."""
        if change.type not in self.types or (self.cities and change.city not in self.cities):
            return False
        payload = change.payload
        if payload is None:
            return True
        for name, value in self.filters.items():
            if payload.get(name) != value:
                return False
        if self.bbox is not None:
            box = bounding_box(payload)
            if box is None:
                return False
            min_lon, min_lat, max_lon, max_lat = self.bbox
            if box[0] > max_lon or box[2] < min_lon or box[1] > max_lat or box[3] < min_lat:
                return False
        return True


def check_readable(selection: Selection, caller: Caller) -> None:
    """Refuse (403) a selection with a type the caller may not read: ``<collection>:read`` for each one."""
    for collection in selection.collections:
        if not caller.has_scope(f"{collection}:read"):
            raise InsufficientScope(f"{collection}:read")


def _bbox(raw: Any) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.split(",")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(part) for part in raw)
    except (TypeError, ValueError):
        raise invalid("/bbox", "format", "bbox must be [minLon, minLat, maxLon, maxLat]") from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise invalid("/bbox", "format", "bbox is not a box [lon, lat] with min <= max")
    return min_lon, min_lat, max_lon, max_lat
