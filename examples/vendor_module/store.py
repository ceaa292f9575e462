"""An in-memory entity store with keyset pagination, the mandated filters and ETags.

store = Store()
store.put(entity)
items, next_after = store.page(Query(city="astana", limit=2))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]


def parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def etag_of(entity: JsonObject) -> str:
    digest = hashlib.sha256(json.dumps(entity, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:20]}"'


@dataclass
class Query:
    limit: int = 100
    after: str | None = None
    city: str | None = None
    updated_since: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    equals: dict[str, str] = field(default_factory=dict)
    as_text: bool = False
    """A defect: compare ``dateModified`` with ``updatedSince`` as text."""
    updated_since_text: str = ""

    def matches(self, entity: JsonObject) -> bool:
        if self.city is not None and entity.get("city") != self.city:
            return False
        if self.updated_since is not None and self.as_text:
            if str(entity.get("dateModified")) < self.updated_since_text:
                return False
        elif self.updated_since is not None:
            modified = parse_instant(entity.get("dateModified"))
            if modified is None or modified < self.updated_since:
                return False
        if self.bbox is not None and not _inside(entity, self.bbox):
            return False
        return all(name in entity and str(entity[name]) == value for name, value in self.equals.items())


def _inside(entity: JsonObject, box: tuple[float, float, float, float]) -> bool:
    location = entity.get("location")
    if not isinstance(location, dict) or location.get("type") != "Point":
        return False
    lon, lat = location["coordinates"][:2]
    return bool(box[0] <= lon <= box[2] and box[1] <= lat <= box[3])


class Store:
    """Entities by id; lists walk them in id order, which makes the keyset cursor a plain id."""

    def __init__(self) -> None:
        self._entities: dict[str, JsonObject] = {}
        self._deleted: set[str] = set()
        """Ids deleted but still listed (a defect: a soft delete the list query forgets)."""

    def get(self, entity_id: str) -> JsonObject | None:
        return None if entity_id in self._deleted else self._entities.get(entity_id)

    def put(self, entity: JsonObject) -> None:
        self.forget(entity["id"])
        self._entities[entity["id"]] = entity

    def forget(self, entity_id: str) -> None:
        if entity_id in self._deleted:
            self._deleted.discard(entity_id)
            self._entities.pop(entity_id, None)

    def delete(self, entity_id: str, *, keep_listed: bool = False) -> bool:
        if keep_listed:
            self._deleted.add(entity_id)
            return entity_id in self._entities
        return self._entities.pop(entity_id, None) is not None

    def page(self, query: Query) -> tuple[list[JsonObject], str | None]:
        """Up to ``limit`` matches after the cursor, and the id to continue after (None on the last page)."""
        matches = [self._entities[key] for key in sorted(self._entities) if query.after is None or key > query.after]
        matches = [entity for entity in matches if query.matches(entity)]
        items = matches[: query.limit]
        more = len(matches) > query.limit
        return items, (items[-1]["id"] if more and items else None)
