"""The formula evaluation as it was before formulas were compiled to Python source (commit 55ad474): a chain of
closures, one per field, test and key part. Kept unchanged, but for its imports (which fields a formula reads, and
which of them the feed gives, now come from cityscore.formula), as the reference the compiled functions must agree
with (tests/cityscore/test_formula.py)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cityscore.book import Condition, Formula
from cityscore.formula import FEED_FIELDS, Change, fields
from cityscore.periods import HOUR_MS, epoch_ms

Instant = tuple[datetime, int]
Item = tuple[int | None, bool, tuple[Any, ...] | None]
Found = tuple[Instant, str | None, Item]
Contribution = Callable[[Change], Found | None]


@functools.lru_cache(maxsize=1024)
def _from_timestamp(seconds: float) -> Instant:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment, epoch_ms(moment)


def received(change: Change) -> datetime:
    return _from_timestamp(change.received_at)[0]


@functools.lru_cache(maxsize=8192)
def _parse(value: str) -> Instant | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment, epoch_ms(moment)) if moment.tzinfo is not None else None


# -- compiling a formula ---------------------------------------------------------------------------------
# Every function below is built once per formula and called with (payload, change): the payload is the live
# entity (never None there), the change carries the feed's own fields (``$received``, ``$feed``). A payload field
# is read with ``payload.get`` in place (``_feed_field`` is None for it) rather than through one more function:
# these run for every KPI of every change of a backfill, and a Python call costs more than the read. A moment the
# formula's ``time`` already read is not read again: ``when`` is handed to whatever needs the same one.

Payload = dict[str, Any]
ReadMoment = Callable[[Payload, Change], Instant | None]


def _feed_field(name: str) -> Callable[[Change], Any] | None:
    """How to read one of the feed's own fields from a change (``$received`` as a datetime, as a condition or a
    key sees it; as a moment it is read by :func:`_moment_reader`); None for a payload field."""
    if name == "$received":
        return received
    if name == "$feed":
        return operator.attrgetter("collection")
    return None


def _moment_reader(name: str) -> ReadMoment:
    if name == "$received":
        return lambda payload, change: _from_timestamp(change.received_at)
    feed = _feed_field(name)

    def moment(payload: Payload, change: Change) -> Instant | None:
        value = payload.get(name) if feed is None else feed(change)
        return _parse(value) if isinstance(value, str) else None

    return moment


def _first_moment(names: tuple[str, ...]) -> ReadMoment:
    if len(names) == 1:
        return _moment_reader(names[0])
    if any(_feed_field(name) for name in names):
        readers = tuple(_moment_reader(name) for name in names)

        def first_of(payload: Payload, change: Change) -> Instant | None:
            for read in readers:
                moment = read(payload, change)
                if moment is not None:
                    return moment
            return None

        return first_of

    def first_field(payload: Payload, change: Change) -> Instant | None:
        for name in names:
            value = payload.get(name)
            if isinstance(value, str):
                moment = _parse(value)
                if moment is not None:
                    return moment
        return None

    return first_field


_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _within(actual: Any, expected: Any) -> bool:
    return actual in expected


def _test(condition: Condition) -> Callable[[Payload, Change], bool]:
    """A condition as a predicate; an absent field (None) fails every operator but ``exists``' negation."""
    name, op, expected = condition.field, condition.op, condition.value
    feed = _feed_field(name)
    if op == "exists":
        return lambda payload, change: (payload.get(name) if feed is None else feed(change)) is not None
    if op in ("eq", "ne", "in"):
        test = {"eq": operator.eq, "ne": operator.ne, "in": _within}[op]

        def compare(payload: Payload, change: Change) -> bool:
            actual = payload.get(name) if feed is None else feed(change)
            return actual is not None and bool(test(actual, expected))

        return compare
    order = _ORDER[op]

    def numeric(payload: Payload, change: Change) -> bool:
        actual = payload.get(name) if feed is None else feed(change)
        if actual is None or isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        return bool(order(actual, expected))

    return numeric


def _value_reader(spec: dict[str, Any], time: tuple[str, ...]) -> Callable[[Payload, Change, Instant], int | None]:
    if "received_minus" in spec:
        if tuple(spec["received_minus"]) == time:
            return lambda payload, change, when: _from_timestamp(change.received_at)[1] - when[1]
        observed_of = _first_moment(tuple(spec["received_minus"]))

        def latency(payload: Payload, change: Change, when: Instant) -> int | None:
            observed = observed_of(payload, change)
            return None if observed is None else _from_timestamp(change.received_at)[1] - observed[1]

        return latency
    if "difference" in spec:
        later_name, earlier_name = spec["difference"]
        earlier_of = _moment_reader(earlier_name)
        if (later_name,) == time:

            def since(payload: Payload, change: Change, when: Instant) -> int | None:
                earlier = earlier_of(payload, change)
                return None if earlier is None else when[1] - earlier[1]

            return since
        later_of = _moment_reader(later_name)

        def difference(payload: Payload, change: Change, when: Instant) -> int | None:
            later, earlier = later_of(payload, change), earlier_of(payload, change)
            return None if later is None or earlier is None else later[1] - earlier[1]

        return difference
    name = spec["decimal"]
    feed = _feed_field(name)

    def decimal(payload: Payload, change: Change, when: Instant) -> int | None:
        raw = payload.get(name) if feed is None else feed(change)
        try:
            amount = Decimal(str(raw)) * 100
        except InvalidOperation:
            return None
        return int(amount) if amount == amount.to_integral_value() else None

    return decimal


def _part_reader(part: str, time: tuple[str, ...]) -> Callable[[Payload, Change, Instant], Any]:
    if part.startswith("hour:"):
        if (part[5:],) == time:
            return lambda payload, change, when: when[1] // HOUR_MS
        moment_of = _moment_reader(part[5:])

        def hour(payload: Payload, change: Change, when: Instant) -> Any:
            moment = moment_of(payload, change)
            return None if moment is None else moment[1] // HOUR_MS

        return hour
    feed = _feed_field(part)

    def plain(payload: Payload, change: Change, when: Instant) -> Any:
        value = payload.get(part) if feed is None else feed(change)
        return value if isinstance(value, (str, int, float, bool)) else None

    return plain


def _key_reader(parts: tuple[str, ...], time: tuple[str, ...]) -> Callable[[Payload, Change, Instant], Any]:
    readers = tuple(_part_reader(part, time) for part in parts)
    if len(readers) == 2:
        first, second = readers
        return lambda payload, change, when: (first(payload, change, when), second(payload, change, when))
    return lambda payload, change, when: tuple(read(payload, change, when) for read in readers)


def _group_reader(name: str) -> Callable[[Payload, Change], str | None]:
    feed = _feed_field(name)

    def group(payload: Payload, change: Change) -> str | None:
        raw = payload.get(name) if feed is None else feed(change)
        return str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None

    return group


def compile_formula(formula: Formula) -> Contribution:
    """``formula`` as one function of a change: its instant, group and item, or None when the formula's
    filters leave the change out or a field it needs is missing (a deletion and other types count for nothing)."""
    reads = frozenset(formula.reads)
    when_of = _first_moment(formula.time)
    where = tuple(_test(c) for c in formula.where)
    numerator = tuple(_test(c) for c in formula.numerator_where)
    value_of = None if formula.value is None else _value_reader(formula.value, formula.time)
    key_of = _key_reader(formula.key, formula.time) if formula.key else None
    group_of = None if formula.group_by is None else _group_reader(formula.group_by)

    def contribution(change: Change) -> Found | None:
        payload = change.payload
        if payload is None or change.type not in reads:
            return None
        when = when_of(payload, change)
        if when is None:
            return None
        for test in where:
            if not test(payload, change):
                return None
        value: int | None = None
        if value_of is not None:
            value = value_of(payload, change, when)
            if value is None:
                return None
        key: tuple[Any, ...] | None = None
        if key_of is not None:
            key = key_of(payload, change, when)
            if None in key:
                return None
        hit = True
        for test in numerator:
            if not test(payload, change):
                hit = False
                break
        return when, None if group_of is None else group_of(payload, change), (value, hit, key)

    if not fields(formula) <= FEED_FIELDS:
        return contribution

    # A formula of the feed's own fields alone (open-data.freshness) gives every live change of one type and
    # collection received in one write the same contribution: evaluate it once per write.
    @functools.lru_cache(maxsize=256)
    def per_write(type_name: str, collection: str, received_at: float) -> Found | None:
        return contribution(Change(0, "", type_name, collection, "", {}, received_at))

    def feed_only(change: Change) -> Found | None:
        return None if change.payload is None else per_write(change.type, change.collection, change.received_at)

    return feed_only
