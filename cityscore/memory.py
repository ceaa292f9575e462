"""An in-memory hub for the engine: a change feed and a KPI sink in one object, as the real store behaves
(one row per entity at the position of its latest change; a deletion leaves a tombstone).

    hub = MemoryHub()
    hub.put({"id": "urn:ngsi-ld:PaymentTransaction:astana:1", "type": "PaymentTransaction", ...}, received_at=t)
    engine = Engine(KpiBook.load(), CityRegistry.load(), hub, hub)
    await engine.tick()
    hub.live("KPIValue")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from cityscore.formula import Change
from schemas import SchemaRegistry

JsonObject = dict[str, Any]


class MemoryHub:
    def __init__(self) -> None:
        self._rows: dict[str, Change] = {}
        self._seq = 0
        self._collections = {s.type_name: s.collection for s in SchemaRegistry.load().latest()}

    def put(self, entity: JsonObject, *, received_at: float | None = None) -> Change:
        self._seq += 1
        change = Change(
            self._seq,
            entity["id"],
            entity["type"],
            str(self._collections.get(entity["type"], entity["type"])),
            entity["city"],
            entity,
            time.time() if received_at is None else received_at,
        )
        self._rows[change.id] = change
        return change

    def delete(self, entity_id: str, *, received_at: float | None = None) -> Change:
        old = self._rows[entity_id]
        self._seq += 1
        change = Change(
            self._seq,
            entity_id,
            old.type,
            old.collection,
            old.city,
            None,
            time.time() if received_at is None else received_at,
        )
        self._rows[entity_id] = change
        return change

    def live(self, type_name: str | None = None) -> list[JsonObject]:
        return [
            c.payload
            for c in sorted(self._rows.values(), key=lambda c: c.seq)
            if c.payload is not None and (type_name is None or c.type == type_name)
        ]

    def final_states(self) -> list[Change]:
        return sorted(self._rows.values(), key=lambda c: c.seq)

    async def changes(self, since: int, limit: int) -> Sequence[Change]:
        newer = sorted((c for c in self._rows.values() if c.seq > since), key=lambda c: c.seq)
        return newer[:limit]

    async def write(self, entities: Sequence[JsonObject]) -> None:
        for entity in entities:
            self.put(entity)
