"""The engine's incremental state: every entity's contributions and the accumulators they feed.

Applying a change first removes what the entity contributed before (the change feed carries only an entity's
latest state, so the ledger remembers each one's items), then adds what it contributes now. The result depends
only on the latest state of every entity, never on the order changes came in: :func:`recompute` builds a fresh
ledger from final states, and the tests hold the two equal.

    >>> ledger = Ledger(KpiBook.load(), CityRegistry.load())
    >>> ledger.apply(change)        # doctest: +SKIP
    >>> ledger.figure(("payments.count", "astana", "day", date(2026, 12, 4), None))   # doctest: +SKIP

How the work is shared, since a backfill applies every stored entity:

* KPIs whose formulas differ only in how they aggregate (the median and the 95th percentile of one latency)
  form one :class:`_Rule`: the entity is evaluated once, and one accumulator per period serves them all.
* A change only drops its items into a :class:`_Bucket` -- one rule, city, local day and group. The buckets are
  folded into their day, week and month accumulators (one :class:`Delta` each) when a figure is next read.
* Every rule reading a type is evaluated by one function written for that type (:meth:`Ledger._applier`): each
  field of the entity is read once and each moment parsed once for all of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cityscore.accumulate import ORDERED, Accumulator, Delta, Figure, Run
from cityscore.book import Kpi, KpiBook
from cityscore.formula import FEED_FIELDS, Change, Contribution, Counted, Item, Source, compile_formula, fields
from cityscore.periods import HOUR_MS, epoch_ms, period_start, window
from schemas.cities import CityRegistry

_UNKNOWN: Any = object()
"""A city the ledger has not asked the registry about yet."""

AccKey = tuple[str, str, str, date, str | None]
"""(KPI code, city, period kind, period start, group or None for the whole city)."""

_StateKey = tuple[int, str, str, date, str | None]
"""An accumulator's place: (rule index, city, period kind, period start, group or None)."""


class _Rule:
    """KPIs of the book that read the same items: one compiled formula, one accumulator per period."""

    def __init__(self, index: int, kpis: list[tuple[int, Kpi]]) -> None:
        self.index = index
        self.kpis = kpis
        self.formula = kpis[0][1].formula
        self.contribution: Contribution = compile_formula(self.formula)
        self.feed_only = fields(self.formula) <= FEED_FIELDS
        self.cadence = tuple(dict.fromkeys(kind for _, kpi in kpis for kind in kpi.cadence))
        self.aggregates = tuple(kpi.formula.aggregate for _, kpi in kpis)
        self.ordered = not ORDERED.isdisjoint(self.aggregates)
        self.last_day: list[Any] = [None, None, 0]
        """The last instant this rule placed, its zone and its local day (a batch of writes shares its receipt
        time)."""


class _Bucket:
    """Items of one rule, city, local day and group that have not reached the accumulators yet, flat: ``added``
    and ``removed`` are ``[value, hit, key, value, hit, key, ...]`` (see :class:`Delta`)."""

    __slots__ = ("added", "city", "figures", "group", "number", "ordinal", "removed", "rule", "run", "states")

    def __init__(self, number: int, rule: int, city: str, ordinal: int, group: str | None) -> None:
        self.number = number
        self.rule = rule
        self.city = city
        self.ordinal = ordinal
        self.group = group
        self.added: list[Any] = []
        self.removed: list[Any] = []
        self.states: tuple[Accumulator, ...] = ()
        """The accumulators it folds into (day, week, month; whole city and group), set when first folded."""
        self.figures: tuple[AccKey, ...] = ()
        """The figures those accumulators answer, marked dirty when it is folded."""
        self.run: Run | None = None
        """Its values, sorted, for a rule with medians or percentiles: kept once for all its accumulators."""


_Entries = tuple[Any, ...]
"""What an entity gave the rules of its type: ``(bucket number, item) * rules``, both None for a rule it does not
count for (a rule's item is the tuple its bucket holds too).

A backfill keeps one per stored entity, so it is kept small: one tuple, and bucket numbers rather than buckets (a
tuple of numbers, strings and tuples of them is one the garbage collector stops tracking; holding the buckets
made every full collection walk every entity's entries). Keeping the items flat, ``(bucket, value, hit, key)``
per rule counted, cost more to build than the pairs (bench/kpi.py, 100,000 entities: ~0.04 s of CPU)."""


class Ledger:
    def __init__(self, book: KpiBook, cities: CityRegistry) -> None:
        self.book = book
        self.cities = cities
        self.kpis: list[Kpi] = list(book)
        grouped: dict[str, list[tuple[int, Kpi]]] = {}
        for index, kpi in enumerate(self.kpis):
            grouped.setdefault(repr(replace(kpi.formula, aggregate="", scale=1)), []).append((index, kpi))
        self._rules = [_Rule(n, kpis) for n, kpis in enumerate(grouped.values())]
        self._rule_of = {kpi.code: rule for rule in self._rules for _, kpi in rule.kpis}
        self._by_type: dict[str, list[_Rule]] = {}
        for rule in self._rules:
            for type_name in rule.kpis[0][1].formula.reads:
                self._by_type.setdefault(type_name, []).append(rule)
        self._zones: dict[str, ZoneInfo | None] = {}
        self._states: dict[_StateKey, Accumulator] = {}
        self._buckets: dict[tuple[int, str, int, str | None], _Bucket] = {}
        self._numbered: list[_Bucket] = []
        self._waiting: list[_Bucket] = []
        self._entries: dict[str, _Entries] = {}
        self._dirty: set[AccKey] = set()
        self._appliers: dict[str, Callable[[Change, dict[str, Any], str, ZoneInfo], _Entries | None]] = {}

    def reads(self, type_name: str) -> bool:
        return type_name in self._by_type

    def _zone(self, city: str) -> ZoneInfo | None:
        """The city's time zone, None for a city the registry does not know (its changes count for nothing)."""
        try:
            return self._zones[city]
        except KeyError:
            zone = self._zones[city] = self.cities.get(city).zone if self.cities.is_known(city) else None
            return zone

    def apply(self, change: Change) -> None:
        """Take in one change (an upsert or a deletion) of an entity."""
        previous = self._entries.pop(change.id, None)
        if previous is not None:
            for at in range(0, len(previous), 2):
                number = previous[at]
                if number is None:
                    continue
                before = self._numbered[number]
                if not (before.added or before.removed):
                    self._waiting.append(before)
                before.removed += previous[at + 1]
        city = change.city
        zone = self._zones.get(city, _UNKNOWN)
        if zone is _UNKNOWN:
            zone = self._zone(city)
        payload = change.payload
        if payload is None or zone is None:
            return
        applier = self._appliers.get(change.type)
        if applier is None:
            if change.type not in self._by_type:
                return
            applier = self._appliers[change.type] = self._applier(change.type)
        entries = applier(change, payload, city, zone)
        if entries is not None:
            self._entries[change.id] = entries

    def _applier(self, type_name: str) -> Callable[[Change, dict[str, Any], str, ZoneInfo], _Entries | None]:
        """One function that evaluates every rule reading ``type_name`` on a live change of it and drops the items
        into their buckets, returning the entity's entries (None when it counts for nothing).

        Written as Python source and compiled (:class:`cityscore.formula.Source`): each field read once, each
        moment parsed once, for all the rules, and no call per rule or per field. The 100,000 changes of
        bench/kpi.py's store cost :meth:`apply` ~0.72 s of CPU through a chain of closures per rule, ~0.58 s
        this way."""
        rules = self._by_type[type_name]
        source = Source("apply(change, payload, city, zone)")
        source.names.update(
            buckets=self._buckets.get, new_bucket=self._bucket, waiting=self._waiting.append, _local_day=_local_day
        )
        source.read({name for rule in rules if not rule.feed_only for name in fields(rule.formula)})
        slots = [(source.local("n"), source.local("i")) for _ in rules]
        source.emit(" = ".join(name for slot in slots for name in slot) + " = None")
        source.emit("seen = None")
        source.emit("ordinal = 0")
        for rule, slot in zip(rules, slots, strict=True):
            if rule.feed_only:  # its contribution is computed once per write (cityscore.formula.compile_formula)
                found = source.local()
                source.emit(f"{found} = {source.const(rule.contribution)}(change)")
                source.open(f"{found} is not None")
                counted = Counted(source.local(), source.local(), slot[1])
                source.emit(f"{counted.when}, {counted.group}, {counted.item} = {found}")
                _place(source, rule, slot, counted)
                source.indent = 1
            else:
                source.formula(rule.formula, functools.partial(_keep, rule=rule, slot=slot))
        any_counted = " or ".join(f"{number} is not None" for number, _ in slots)
        source.emit(f"return ({', '.join(name for slot in slots for name in slot)},) if {any_counted} else None")
        applier: Callable[[Change, dict[str, Any], str, ZoneInfo], _Entries | None] = source.compile("apply")
        return applier

    def _bucket(self, rule: int, city: str, ordinal: int, group: str | None) -> _Bucket:
        bucket = self._buckets[rule, city, ordinal, group] = _Bucket(len(self._numbered), rule, city, ordinal, group)
        self._numbered.append(bucket)
        return bucket

    def _settle(self) -> None:
        """Fold every waiting bucket into its day, week and month accumulators (whole city and its group)."""
        for bucket in self._waiting:
            delta = Delta(bucket.added, bucket.removed, ordered=self._rules[bucket.rule].ordered)
            bucket.added, bucket.removed = [], []
            if not bucket.states:
                self._place(bucket)
            if bucket.run is not None:
                bucket.run.fold(delta)
            for state in bucket.states:
                state.fold(delta)
            self._dirty.update(bucket.figures)
        self._waiting.clear()

    def _place(self, bucket: _Bucket) -> None:
        rule = self._rules[bucket.rule]
        run = bucket.run = Run() if rule.ordered else None
        states: list[Accumulator] = []
        figures: list[AccKey] = []
        for kind, start in _starts(rule.cadence, bucket.ordinal):
            for scope in (None, bucket.group) if bucket.group is not None else (None,):
                place = (rule.index, bucket.city, kind, start, scope)
                state = self._states.get(place)
                if state is None:
                    state = self._states[place] = Accumulator(*rule.aggregates)
                if run is not None:
                    assert state.runs is not None
                    state.runs.append(run)
                states.append(state)
                figures += [(kpi.code, bucket.city, kind, start, scope) for _, kpi in rule.kpis if kind in kpi.cadence]
        bucket.states, bucket.figures = tuple(states), tuple(figures)

    def figure(self, key: AccKey) -> Figure:
        """The current result for ``key`` (an empty one when nothing counts there)."""
        self._settle()
        code, city, kind, start, scope = key
        kpi = self.book.get(code)
        state = self._states.get((self._rule_of[code].index, city, kind, start, scope))
        if state is None or kind not in kpi.cadence:  # a rule's other KPIs may be kept for more periods
            state = Accumulator(kpi.formula.aggregate)
        start_hour = 0
        if kpi.formula.aggregate == "coverage":  # the only aggregate that looks at where the period begins
            begin, _ = window(kind, start, self.cities.get(city).zone)
            start_hour = epoch_ms(begin) // HOUR_MS
        return state.figure(kpi.formula.aggregate, kpi.formula.scale, start_hour)

    def all_keys(self) -> list[AccKey]:
        """Every key that has (or had) something counted, in a stable order."""
        self._settle()
        keys = [
            (kpi.code, city, kind, start, scope)
            for rule_index, city, kind, start, scope in self._states
            for _, kpi in self._rules[rule_index].kpis
            if kind in kpi.cadence
        ]
        return sorted(keys, key=_order)

    def take_dirty(self) -> set[AccKey]:
        """The keys whose figures may have changed since the last call."""
        self._settle()
        dirty, self._dirty = self._dirty, set()
        return dirty

    def mark_dirty(self, keys: Iterable[AccKey]) -> None:
        """Hand keys back (their figures could not be written): the next :meth:`take_dirty` includes them."""
        self._dirty.update(keys)

    def contributions(self, entity_id: str) -> list[tuple[str, date, str | None, Item]]:
        """What one entity counts for: (KPI code, local day, group, item); for ``qala kpi explain``."""
        entries = self._entries.get(entity_id, ())
        found = []
        for at in range(0, len(entries), 2):
            if entries[at] is None:
                continue
            bucket, item = self._numbered[entries[at]], entries[at + 1]
            day = date.fromordinal(bucket.ordinal)
            found += [(index, kpi.code, day, bucket.group, item) for index, kpi in self._rules[bucket.rule].kpis]
        return [(code, day, group, item) for _, code, day, group, item in sorted(found, key=lambda f: f[0])]

    def members(self, key: AccKey) -> list[str]:
        """Ids of the entities counted in ``key`` (a scan of the ledger: for explaining one figure, not per tick)."""
        code, city, kind, start, scope = key
        rule = self._rule_of[code].index
        found = []
        for entity_id, entries in self._entries.items():
            for number in entries[::2]:
                if number is None:
                    continue
                bucket = self._numbered[number]
                if (
                    bucket.rule == rule
                    and bucket.city == city
                    and period_start(kind, date.fromordinal(bucket.ordinal)) == start
                    and (scope is None or bucket.group == scope)
                ):
                    found.append(entity_id)
                    break
        return sorted(found)


def _keep(source: Source, counted: Counted, *, rule: _Rule, slot: tuple[str, str]) -> None:
    """Where a rule's formula counts: keep its item in the rule's slot, then place it."""
    source.emit(f"{slot[1]} = {counted.item}")
    _place(source, rule, slot, counted._replace(item=slot[1]))


def _place(source: Source, rule: _Rule, slot: tuple[str, str], counted: Counted) -> None:
    """Write how ``rule``'s item (in the slot's local) goes into its bucket, whose number goes in the slot too.
    The local day is computed once for the instants the entity's rules share, and kept across changes by each
    rule (a batch of writes shares its receipt time)."""
    last, index = source.const(rule.last_day), source.const(rule.index)
    bucket, group, when = source.local("b"), source.local("g"), counted.when
    for line in (
        f"if {when} is not seen:",
        f"    seen = {when}",
        f"    if {when} is {last}[0] and zone is {last}[1]:",
        f"        ordinal = {last}[2]",
        "    else:",
        f"        ordinal = _local_day({when}[0], zone)",
        f"        {last}[:] = {when}, zone, ordinal",
        f"{group} = {counted.group}",
        f"{bucket} = buckets(({index}, city, ordinal, {group}))",
        f"if {bucket} is None:",
        f"    {bucket} = new_bucket({index}, city, ordinal, {group})",
        f"if not ({bucket}.added or {bucket}.removed):",
        f"    waiting({bucket})",
        f"{bucket}.added += {slot[1]}",
        f"{slot[0]} = {bucket}.number",
    ):
        source.emit(line)


def _local_day(moment: datetime, zone: ZoneInfo) -> int:
    """The ordinal of the day ``moment`` falls on in ``zone``."""
    return moment.astimezone(zone).toordinal()


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
