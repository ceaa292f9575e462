"""The engine's incremental state: every entity's contributions and the accumulators they feed.

Applying a change first removes what the entity contributed before (the change feed carries only an entity's
latest state, so the ledger remembers each one's items), then adds what it contributes now. The result depends
only on the latest state of every entity, never on the order changes came in: :func:`recompute` builds a fresh
ledger from final states, and the tests hold the two equal.

    >>> ledger = Ledger(KpiBook.load(), CityRegistry.load())
    >>> ledger.apply(change)        # doctest: +SKIP
    >>> ledger.figure(("payments.count", "astana", "day", date(2026, 12, 4), None))   # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any

from cityscore.accumulate import Accumulator, Figure
from cityscore.book import Kpi, KpiBook
from cityscore.formula import Change, Item, evaluate
from cityscore.periods import HOUR_MS, epoch_ms, period_start, window
from schemas.cities import CityRegistry

AccKey = tuple[str, str, str, date, str | None]
"""(KPI code, city, period kind, period start, group or None for the whole city)."""

_Entry = tuple[int, int, str | None, Item]
"""What an entity gave one KPI: (KPI index, local day ordinal, group, item)."""


class Ledger:
    def __init__(self, book: KpiBook, cities: CityRegistry) -> None:
        self.book = book
        self.cities = cities
        self.kpis: list[Kpi] = list(book)
        self._by_type: dict[str, list[int]] = {}
        for index, kpi in enumerate(self.kpis):
            for type_name in kpi.formula.reads:
                self._by_type.setdefault(type_name, []).append(index)
        self._signatures = [repr(replace(kpi.formula, aggregate="", scale=1)) for kpi in self.kpis]
        self._accumulators: dict[AccKey, Accumulator] = {}
        self._entries: dict[str, tuple[str, tuple[_Entry, ...]]] = {}
        self.dirty: set[AccKey] = set()

    def reads(self, type_name: str) -> bool:
        return type_name in self._by_type

    def apply(self, change: Change) -> None:
        """Take in one change (an upsert or a deletion) of an entity."""
        previous = self._entries.pop(change.id, None)
        if previous is not None:
            self._feed(previous[0], previous[1], -1)
        if change.payload is None or not self.cities.is_known(change.city):
            return
        zone = self.cities.get(change.city).zone
        entries: list[_Entry] = []
        shared: dict[str, tuple[int, str | None, Item] | None] = {}
        for index in self._by_type.get(change.type, ()):
            # KPIs whose formulas differ only in how they aggregate (median and p95 of one latency) share one
            # evaluation of the entity.
            signature = self._signatures[index]
            if signature not in shared:
                found = evaluate(self.kpis[index], change)
                shared[signature] = (
                    None if found is None else (found[0].astimezone(zone).date().toordinal(), found[1], found[2])
                )
            evaluated = shared[signature]
            if evaluated is not None:
                entries.append((index, *evaluated))
        if entries:
            self._entries[change.id] = (change.city, tuple(entries))
            self._feed(change.city, self._entries[change.id][1], +1)

    def _feed(self, city: str, entries: Iterable[_Entry], sign: int) -> None:
        for index, ordinal, group, item in entries:
            kpi = self.kpis[index]
            for kind, start in _starts(kpi.cadence, ordinal):
                for scope in (None, group) if group is not None else (None,):
                    key: AccKey = (kpi.code, city, kind, start, scope)
                    accumulator = self._accumulators.get(key)
                    if accumulator is None:
                        accumulator = self._accumulators[key] = Accumulator(kpi.formula.aggregate)
                    accumulator.apply(item, sign)
                    self.dirty.add(key)

    def figure(self, key: AccKey) -> Figure:
        """The current result for ``key`` (an empty one when nothing counts there)."""
        kpi = self.book.get(key[0])
        accumulator = self._accumulators.get(key) or Accumulator(kpi.formula.aggregate)
        begin, _ = window(key[2], key[3], self.cities.get(key[1]).zone)
        return accumulator.figure(kpi.formula.scale, epoch_ms(begin) // HOUR_MS)

    def all_keys(self) -> list[AccKey]:
        """Every key that has (or had) something counted, in a stable order."""
        return sorted(self._accumulators, key=_order)

    def take_dirty(self) -> set[AccKey]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def contributions(self, entity_id: str) -> list[tuple[str, date, str | None, Item]]:
        """What one entity counts for: (KPI code, local day, group, item); for ``qala kpi explain``."""
        _, entries = self._entries.get(entity_id, ("", ()))
        return [(self.kpis[i].code, date.fromordinal(o), g, item) for i, o, g, item in entries]

    def members(self, key: AccKey) -> list[str]:
        """Ids of the entities counted in ``key`` (a scan of the ledger: for explaining one figure, not per tick)."""
        code, city, kind, start, scope = key
        index = next(i for i, kpi in enumerate(self.kpis) if kpi.code == code)
        found = []
        for entity_id, (entity_city, entries) in self._entries.items():
            if entity_city != city:
                continue
            for i, ordinal, group, _ in entries:
                if (
                    i == index
                    and period_start(kind, date.fromordinal(ordinal)) == start
                    and (scope is None or group == scope)
                ):
                    found.append(entity_id)
                    break
        return sorted(found)


@functools.lru_cache(maxsize=4096)
def _starts(cadence: tuple[str, ...], ordinal: int) -> tuple[tuple[str, date], ...]:
    """The start of each period of ``cadence`` that contains the day ``ordinal``."""
    day = date.fromordinal(ordinal)
    return tuple((kind, period_start(kind, day)) for kind in cadence)


def _order(key: AccKey) -> tuple[Any, ...]:
    return (key[0], key[1], key[2], key[3], key[4] or "")


def recompute(book: KpiBook, cities: CityRegistry, final_states: Iterable[Change]) -> dict[AccKey, Figure]:
    """Every figure from scratch, from the latest state of each entity."""
    ledger = Ledger(book, cities)
    for change in final_states:
        ledger.apply(change)
    return {key: ledger.figure(key) for key in ledger.all_keys()}
