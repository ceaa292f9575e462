"""Plausibility bounds: a mapping rule's ``min`` and ``max``, checked on the converted value.

A registration date ten years in the future, or a meter reading of minus one million, converts cleanly and is
still wrong; a rule may bound it, and a value outside its bounds rejects the record with ``implausible-value``::

    fields:
      dateRequested: {column: [Дата регистрации], convert: local_datetime, min: 2000-01-01, max: now}
      value: {column: [Показание], convert: number, min: 0, max: 1e9}

Bounds are numbers (for ``number``, ``integer``, ``decimal``), or dates, date-times, ``today`` or ``now``, with
an optional ``+``/``-`` and a number of days (``now+1d``: clocks differ), for date and date-time values.

    >>> check = bounded(lambda v: v, Bounds.parse(0, 100, "Asia/Almaty", "value"))
    >>> check(101)
    Traceback (most recent call last):
    ...
    adapters.bounds.ImplausibleValue: 101 is above the maximum 100
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from adapters.errors import ConversionError, MappingError

_RELATIVE = re.compile(r"^(now|today)\s*(?:([+-])\s*([0-9]+)\s*d)?$")


class ImplausibleValue(ConversionError):
    """A value that converted but falls outside the bounds its rule declares."""


@dataclass(frozen=True)
class Bound:
    """One end: a number, a fixed moment, or ``now``/``today`` plus days (worked out when checked)."""

    text: str
    number: Decimal | None = None
    moment: datetime | None = None
    relative: tuple[str, int] | None = None

    def value_for(self, sample: Any) -> Any:
        if self.number is not None:
            return self.number
        if self.relative is not None:
            anchor, days = self.relative
            now = datetime.now(UTC)
            if anchor == "today":
                now = now.replace(hour=0, minute=0, second=0, microsecond=0)
            return now + timedelta(days=days)
        return self.moment


@dataclass(frozen=True)
class Bounds:
    low: Bound | None
    high: Bound | None

    @classmethod
    def parse(cls, low: Any, high: Any, zone: str, where: str) -> Bounds:
        return cls(_bound(low, zone, where, "min"), _bound(high, zone, where, "max"))


def _bound(value: Any, zone: str, where: str, key: str) -> Bound | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError(f"{where}: {key} must be a number, a date, 'today' or 'now', not {value!r}")
    if isinstance(value, int | float | Decimal):
        return Bound(str(value), number=Decimal(str(value)))
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))
        return Bound(str(value), moment=moment)
    if isinstance(value, date):  # YAML reads 2000-01-01 as a date
        return Bound(str(value), moment=datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(zone)))
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        anchor, sign, days = relative.groups()
        return Bound(text, relative=(anchor, (-1 if sign == "-" else 1) * int(days or 0)))
    try:
        return Bound(text, number=Decimal(text))
    except InvalidOperation:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"{where}: {key} must be a number, a date, 'today' or 'now', not {value!r}") from None
    return Bound(text, moment=moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone)))


def _comparable(value: Any, numeric: bool, zone: str) -> Any:
    """The converted value as a Decimal or an aware datetime, to set against a bound of that kind."""
    if numeric:
        if isinstance(value, bool):
            raise ImplausibleValue(f"{value!r} is no number to bound")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ImplausibleValue(f"{value!r} is no number to bound") from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ImplausibleValue(f"{value!r} is no date to bound") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


def bounded(convert: Callable[[Any], Any], bounds: Bounds, zone: str = "Asia/Almaty") -> Callable[[Any], Any]:
    """``convert`` followed by the bounds check; :class:`ImplausibleValue` for a value outside them."""
    low, high = bounds.low, bounds.high

    def check(value: Any) -> Any:
        result = convert(value)
        for bound, outside, word in ((low, -1, "below the minimum"), (high, 1, "above the maximum")):
            if bound is None:
                continue
            limit = bound.value_for(result)
            mine = _comparable(result, isinstance(limit, Decimal), zone)
            if (mine > limit) - (mine < limit) == outside:
                raise ImplausibleValue(f"{result} is {word} {bound.text}")
        return result

    return check
