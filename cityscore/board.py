"""The scoreboard behind the public pages: the engine's KPIValues of every city, arranged by KPI and period.

It reads through the narrowest interface there is -- ``entities(collection, city)``, which the catalogue's live
source already offers -- so the pages show exactly what the hub publishes as open data.

    board = await Board.load(source, CityRegistry.load())
    board.ranking("day")            # [(rank, city, score, period start), ...]
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from cityscore.book import BOOK_NAME
from cityscore.score import CITYSCORE
from schemas.cities import CityRegistry

JsonObject = dict[str, Any]


class KpiSource(Protocol):
    def entities(self, collection: str, city: str, *, limit: int | None = None) -> AsyncIterator[JsonObject]: ...


@dataclass(frozen=True)
class Place:
    rank: int
    city: str
    score: float
    start: date
    final: bool


class Board:
    def __init__(self, values: list[JsonObject]) -> None:
        self._by: dict[tuple[str, str, str, str | None], dict[date, JsonObject]] = {}
        for value in values:
            key = (value["city"], value["kpiCode"], value["period"], value.get("groupKey"))
            self._by.setdefault(key, {})[date.fromisoformat(value["periodStart"])] = value

    @classmethod
    async def load(cls, source: KpiSource, cities: CityRegistry) -> Board:
        values = []
        for city in cities:
            async for entity in source.entities("kpi-values", city.code):
                if str(entity.get("source", "")).startswith(BOOK_NAME):
                    values.append(entity)
        return cls(values)

    def cities(self) -> list[str]:
        return sorted({city for city, code, _, _ in self._by if code == CITYSCORE})

    def series(self, city: str, code: str, kind: str, group: str | None = None, last: int = 30) -> list[JsonObject]:
        """The most recent ``last`` values, oldest first."""
        found = self._by.get((city, code, kind, group), {})
        return [found[start] for start in sorted(found)[-last:]]

    def latest(self, city: str, code: str, kind: str, group: str | None = None) -> JsonObject | None:
        series = self.series(city, code, kind, group, last=1)
        return series[0] if series else None

    def groups(self, city: str, code: str, kind: str) -> list[str]:
        return sorted(g for c, k, p, g in self._by if c == city and k == code and p == kind and g is not None)

    def ranking(self, kind: str, start: date | None = None) -> list[Place]:
        """Cities by their CityScore for the period starting ``start`` (default: the latest one any city has)."""
        if start is None:
            starts = [s for (c, k, p, g), found in self._by.items() if k == CITYSCORE and p == kind for s in found]
            if not starts:
                return []
            start = max(starts)
        scored = []
        for city in self.cities():
            value = self._by.get((city, CITYSCORE, kind, None), {}).get(start)
            if value is not None and value.get("score") is not None:
                scored.append((float(value["score"]), city, bool(value.get("final"))))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [Place(index, city, score, start, final) for index, (score, city, final) in enumerate(scored, 1)]

    def history(self, kind: str, last: int = 14) -> list[tuple[date, list[Place]]]:
        """The ranking of each of the last ``last`` periods, oldest first."""
        starts = sorted({s for (c, k, p, g), found in self._by.items() if k == CITYSCORE and p == kind for s in found})
        return [(start, self.ranking(kind, start)) for start in starts[-last:]]
