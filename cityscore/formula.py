"""What one change contributes to a KPI: evaluating the book's declarative formula on one entity.

A contribution is an :data:`Item` -- ``(value, hit, key)`` -- placed in a period by the entity's time. Values
are integers in a base unit (milliseconds, tiyn), so adding and later removing them is exact in any order.

    >>> change = Change(1, "urn:ngsi-ld:PaymentTransaction:astana:1", "PaymentTransaction",
    ...                 "payment-transactions", "astana",
    ...                 {"status": "ACSC", "amount": "1500.50", "dateBooked": "2026-12-04T10:00:00+05:00"}, 1.8e9)
    >>> when, group, item = evaluate(KpiBook.load().get("payments.amount"), change)
    >>> when.isoformat(), group, item
    ('2026-12-04T10:00:00+05:00', None, (150050, True, None))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cityscore.book import Condition, Kpi, KpiBook
from cityscore.periods import HOUR_MS, epoch_ms

__all__ = ["Change", "Item", "KpiBook", "evaluate"]

Item = tuple[int | None, bool, tuple[Any, ...] | None]
"""(value in the base unit or None, passes numeratorWhere, distinct key or None)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the hub's change feed as the engine reads it; ``payload`` is None for a deletion."""

    seq: int
    id: str
    type: str
    collection: str
    city: str
    payload: dict[str, Any] | None
    received_at: float


@functools.lru_cache(maxsize=1024)
def _from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def received(change: Change) -> datetime:
    # Through a datetime (microseconds), exactly as a reader of the public feed's receivedAt sees it.
    return _from_timestamp(change.received_at)


def _field(change: Change, name: str) -> Any:
    if name == "$received":
        return received(change)
    if name == "$feed":
        return change.collection
    assert change.payload is not None
    return change.payload.get(name)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    return _parse(value)


@functools.lru_cache(maxsize=8192)
def _parse(value: str) -> datetime | None:
    """An aware date-time; cached, since the KPIs of one entity read the same fields."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _first_moment(change: Change, names: tuple[str, ...] | list[str]) -> datetime | None:
    for name in names:
        moment = _moment(_field(change, name))
        if moment is not None:
            return moment
    return None


def _holds(change: Change, condition: Condition) -> bool:
    actual = _field(change, condition.field)
    op, expected = condition.op, condition.value
    if op == "exists":
        return actual is not None
    if actual is None:
        return False
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "in":
        return bool(actual in expected)
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    compare: dict[str, bool] = {
        "gt": actual > expected,
        "ge": actual >= expected,
        "lt": actual < expected,
        "le": actual <= expected,
    }
    return compare[op]


def _value(change: Change, spec: dict[str, Any]) -> int | None:
    if "received_minus" in spec:
        observed = _first_moment(change, spec["received_minus"])
        return None if observed is None else epoch_ms(received(change)) - epoch_ms(observed)
    if "difference" in spec:
        later, earlier = (_moment(_field(change, name)) for name in spec["difference"])
        return None if later is None or earlier is None else epoch_ms(later) - epoch_ms(earlier)
    raw = _field(change, spec["decimal"])
    try:
        amount = Decimal(str(raw)) * 100
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


def _key_part(change: Change, part: str) -> Any:
    if part.startswith("hour:"):
        moment = _moment(_field(change, part[5:]))
        return None if moment is None else epoch_ms(moment) // HOUR_MS
    value = _field(change, part)
    return value if isinstance(value, (str, int, float, bool)) else None


def evaluate(kpi: Kpi, change: Change) -> tuple[datetime, str | None, Item] | None:
    """Where ``change`` (a live entity of a type the KPI reads) counts for ``kpi``: its moment, group and item;
    None when the formula's filters leave it out or a field it needs is missing."""
    formula = kpi.formula
    if change.payload is None or change.type not in formula.reads:
        return None
    when = _first_moment(change, formula.time)
    if when is None or not all(_holds(change, c) for c in formula.where):
        return None
    value: int | None = None
    if formula.value is not None:
        value = _value(change, formula.value)
        if value is None:
            return None
    key: tuple[Any, ...] | None = None
    if formula.key:
        key = tuple(_key_part(change, part) for part in formula.key)
        if any(part is None for part in key):
            return None
    hit = all(_holds(change, c) for c in formula.numerator_where)
    group: str | None = None
    if formula.group_by is not None:
        raw = _field(change, formula.group_by)
        group = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    return when, group, (value, hit, key)
