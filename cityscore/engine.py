"""The KPI engine: the change feed in, KPIValue entities out, incrementally.

The hub passes in two narrow interfaces: a :class:`ChangeFeed` to read its change feed from a position, and a
:class:`KpiSink` that writes KPIValue entities through its store (so they are validated, audited and in the
change feed like any entity). Each :meth:`Engine.tick` reads only the changes since the last one, updates the
accumulators they touch, and writes the figures that changed. Starting from position 0 is the backfill.

    engine = Engine(KpiBook.load(), CityRegistry.load(), feed, sink)
    await engine.tick()          # returns how many KPIValue entities it wrote

A period is *final* once it has ended in the city's time zone. A final figure that later changes (late data,
a deletion) is published again with ``revision`` raised and the earlier value kept in ``revisions``. The engine
reads its own KPIValues back from the feed, so a restarted engine keeps counting revisions where it left off.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from fractions import Fraction
from hashlib import sha256
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cityscore.accumulate import Figure
from cityscore.book import BOOK_NAME, Kpi, KpiBook
from cityscore.formula import Change
from cityscore.ledger import AccKey, Ledger
from cityscore.periods import label, period_days, period_end, window
from cityscore.score import CITYSCORE, composite, rounded, score
from schemas.cities import CityRegistry

JsonObject = dict[str, Any]
PAGE = 1000
KPI_TYPE = "KPIValue"
VALUE_DIGITS = 6
SCORE_DIGITS = 4
MAX_REVISIONS = 100


class ChangeFeed(Protocol):
    async def changes(self, since: int, limit: int) -> Sequence[Change]:
        """Changes after position ``since``, in commit order, at most ``limit``."""


class KpiSink(Protocol):
    async def write(self, entities: Sequence[JsonObject]) -> None:
        """Store KPIValue entities (create or replace by id)."""


class Engine:
    def __init__(
        self,
        book: KpiBook,
        cities: CityRegistry,
        feed: ChangeFeed,
        sink: KpiSink,
        *,
        collections: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.cities = cities
        self.feed = feed
        self.sink = sink
        self.clock = clock
        self.ledger = Ledger(book, cities)
        self.position = 0
        self.published: dict[AccKey, JsonObject] = {}
        self._collections = collections or {}
        self._open: set[AccKey] = set()

    async def catch_up(self) -> int:
        """Read every change since the last position; returns how many were read."""
        read = 0
        while True:
            page = await self.feed.changes(self.position, PAGE)
            for change in page:
                self._take(change)
            read += len(page)
            if page:
                self.position = page[-1].seq
            if len(page) < PAGE:
                return read

    async def tick(self) -> int:
        """Catch up with the feed and write every figure that changed; returns the number written."""
        await self.catch_up()
        dirty = self.ledger.take_dirty()
        entities = self._pending(dirty)
        if entities:
            try:
                await self.sink.write(entities)
            except Exception:
                self.ledger.mark_dirty(dirty)  # nothing was written: the next tick tries these figures again
                raise
            for entity in entities:
                self._remember(entity)
        return len(entities)

    def _take(self, change: Change) -> None:
        if change.type == KPI_TYPE:
            payload = change.payload
            if payload is not None and str(payload.get("source", "")).startswith(BOOK_NAME):
                self._remember(payload)
            return
        self.ledger.apply(change)  # which passes over the types no KPI reads

    def _remember(self, payload: JsonObject) -> None:
        key: AccKey = (
            payload["kpiCode"],
            payload["city"],
            payload["period"],
            date.fromisoformat(payload["periodStart"]),
            payload.get("groupKey"),
        )
        self.published[key] = payload
        if payload.get("final"):
            self._open.discard(key)
        else:
            self._open.add(key)

    # -- what to write ------------------------------------------------------------------------------

    def pending(self) -> list[JsonObject]:
        """KPIValue entities for every figure that differs from what was last published, CityScores included."""
        return self._pending(self.ledger.take_dirty())

    def _pending(self, dirty: set[AccKey]) -> list[JsonObject]:
        now = self.clock()
        keys = dirty | {key for key in self._open if self._ended(key, now)}
        out: list[JsonObject] = []
        touched: set[tuple[str, str, date]] = set()
        for key in sorted(keys, key=lambda k: (k[0], k[1], k[2], k[3], k[4] or "")):
            if key[0] == CITYSCORE:
                touched.add((key[1], key[2], key[3]))
                continue
            figure = self.ledger.figure(key)
            if figure.entities == 0 and key not in self.published:
                continue
            entity = self._revised(key, self.kpi_value(key, figure, now), now)
            if entity is not None:
                out.append(entity)
            if key[4] is None:
                touched.add((key[1], key[2], key[3]))
        for city, kind, start in sorted(touched):
            entity = self._revised((CITYSCORE, city, kind, start, None), self.city_score(city, kind, start, now), now)
            if entity is not None:
                out.append(entity)
        return out

    def _ended(self, key: AccKey, now: float) -> bool:
        return _end_seconds(key[2], key[3], self.cities.get(key[1]).zone) <= now

    def _revised(self, key: AccKey, entity: JsonObject, now: float) -> JsonObject | None:
        """``entity`` with its revision bookkeeping, or None when it says nothing new."""
        before = self.published.get(key)
        final = self._ended(key, now)
        entity["final"] = final
        if before is not None:
            same = all(before.get(f) == entity.get(f) for f in ("numerator", "denominator", "value", "score"))
            if same and bool(before.get("final")) == final:
                return None
            history = list(before.get("revisions", []))
            revision = int(before.get("revision", 0))
            if before.get("final") and not same:
                history.append(
                    {
                        name: before[name]
                        for name in ("revision", "dateCalculated", "numerator", "denominator", "value", "score")
                        if name in before
                    }
                    | {"revision": revision}
                )
                revision += 1
            if before.get("final") or final:
                entity["revision"] = revision
            if history:
                entity["revisions"] = history[-MAX_REVISIONS:]
        elif final:
            entity["revision"] = 0
        return entity

    # -- the entities ------------------------------------------------------------------------------

    def _common(self, key: AccKey, now: float) -> JsonObject:
        code, city, kind, start, group = key
        zone = self.cities.get(city).zone
        stamp = _stamp(now, zone)
        local = f"{code}-{kind}-{label(kind, start)}" + (f"-{_slug(group)}" if group is not None else "")
        entity: JsonObject = {
            "id": f"urn:ngsi-ld:KPIValue:{city}:{local}",
            "type": KPI_TYPE,
            "city": city,
            "dateModified": stamp,
            "source": self.book.source,
            "kpiCode": code,
            "period": kind,
            "periodStart": start.isoformat(),
            "periodEnd": period_end(kind, start).isoformat(),
            "dateCalculated": stamp,
        }
        if group is not None:
            entity["groupKey"] = group
        return entity

    def _lineage(self, key: AccKey, collections: list[str], counts: dict[str, int]) -> JsonObject:
        begin, end = window(key[2], key[3], self.cities.get(key[1]).zone)
        return {
            "book": BOOK_NAME,
            "bookVersion": self.book.version,
            "windowStart": begin.isoformat(),
            "windowEnd": end.isoformat(),
            "collections": collections,
            "throughSeq": self.position,
            "entities": counts.get("entities", 0),
            "counts": counts,
        }

    def kpi_value(self, key: AccKey, figure: Figure, now: float) -> JsonObject:
        code, city, kind, start, group = key
        kpi = self.book.get(code)
        entity = self._common(key, now)
        entity.update(name=kpi.name, description=kpi.description, unit=kpi.unit, direction=kpi.direction)
        if group is not None:
            entity["groupBy"] = kpi.formula.group_by.lstrip("$") if kpi.formula.group_by else "group"
        entity["weight"] = kpi.weight_for(city)
        if figure.numerator is not None and figure.denominator is not None:
            entity["numerator"] = figure.numerator
            entity["denominator"] = figure.denominator
        value = figure.value if figure.denominator != 0 else None
        entity["value"] = rounded(value, VALUE_DIGITS)
        target = kpi.target_for(city, days=period_days(kind, start))
        if target is not None:
            entity["target"] = rounded(target, VALUE_DIGITS)
            entity["score"] = rounded(score(value, target, kpi.direction, kpi.score_cap), SCORE_DIGITS)
            if kpi.score_cap is not None:
                entity["scoreCap"] = kpi.score_cap
        collections = sorted({self._collections.get(t, t) for t in kpi.formula.reads})
        entity["lineage"] = self._lineage(key, collections, figure.counts)
        return entity

    def kpi_score(self, kpi: Kpi, city: str, kind: str, start: date) -> Fraction | None:
        figure = self.ledger.figure((kpi.code, city, kind, start, None))
        if figure.entities == 0:
            return None
        value = figure.value if figure.denominator != 0 else None
        target = kpi.target_for(city, days=period_days(kind, start))
        return score(value, target, kpi.direction, kpi.score_cap)

    def city_score(self, city: str, kind: str, start: date, now: float) -> JsonObject:
        """The composite: the weighted mean of the scores of the KPIs measured in that period."""
        parts = [(self.kpi_score(k, city, kind, start), k.weight_for(city)) for k in self.book if kind in k.cadence]
        counted = [(s, w) for s, w in parts if s is not None and w > 0]
        value = composite(counted)
        entity = self._common((CITYSCORE, city, kind, start, None), now)
        entity.update(
            name={"kk": "CityScore-KZ", "ru": "CityScore-KZ", "en": "CityScore-KZ"},
            description={
                "kk": "Көрсеткіштер бағаларының салмақты орташасы; 1 = мақсатқа жетті.",
                "ru": "Взвешенное среднее оценок показателей; 1 = цель достигнута.",
                "en": "Weighted mean of the indicator scores; 1 = on target.",
            },
            unit="1",
            direction="higher-is-better",
            value=rounded(value, SCORE_DIGITS),
            target=1,
            score=rounded(value, SCORE_DIGITS),
        )
        collections = sorted({self._collections.get(t, t) for t in self.book.reads()})
        entity["lineage"] = self._lineage((CITYSCORE, city, kind, start, None), collections, {"kpis": len(counted)})
        return entity


@functools.lru_cache(maxsize=4096)
def _end_seconds(kind: str, start: date, zone: ZoneInfo) -> float:
    """When a period ends, in POSIX seconds (asked for every figure of every tick)."""
    _, end = window(kind, start, zone)
    return end.timestamp()


@functools.lru_cache(maxsize=64)
def _stamp(now: float, zone: ZoneInfo) -> str:
    """``now`` as a city's local date-time, to the second: every figure of one tick carries the same one."""
    return datetime.fromtimestamp(now, UTC).astimezone(zone).isoformat(timespec="seconds")


def _slug(group: str) -> str:
    """A group key as it may appear in an id; a changed key gets a short digest so two never collide."""
    slug = re.sub(r"[^A-Za-z0-9._~-]", "_", group)[:40]
    return slug if slug == group else f"{slug}~{sha256(group.encode()).hexdigest()[:8]}"
