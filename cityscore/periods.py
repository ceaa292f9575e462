"""CityScore periods in a city's own time zone: a day, a week (Monday to Sunday) and a calendar month.

>>> from datetime import date
>>> period_start("week", date(2026, 12, 4))
datetime.date(2026, 11, 30)
>>> parse_period("2026-12")
('month', datetime.date(2026, 12, 1))
>>> label("week", date(2026, 11, 30))
'2026-W49'
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cityscore.errors import BadPeriod

PERIODS = ("day", "week", "month")
HOUR_MS = 3_600_000


def period_start(kind: str, day: date) -> date:
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    raise BadPeriod(f"unknown period {kind!r}; use day, week or month")


def period_days(kind: str, start: date) -> int:
    if kind == "day":
        return 1
    if kind == "week":
        return 7
    return calendar.monthrange(start.year, start.month)[1]


def period_end(kind: str, start: date) -> date:
    """The last day of the period, inclusive."""
    return start + timedelta(days=period_days(kind, start) - 1)


@functools.lru_cache(maxsize=4096)
def window(kind: str, start: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as [start, end) instants, aware, in the city's zone (cached: the engine asks for the same few
    periods for every figure it writes)."""
    begin = datetime.combine(start, time(), zone)
    end = datetime.combine(period_end(kind, start) + timedelta(days=1), time(), zone)
    return begin, end


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (integer arithmetic on the aware datetime).

    The same as ``(moment - epoch) // timedelta(milliseconds=1)``: a timedelta's seconds and microseconds are
    never negative, so only the microseconds need flooring; spelled out because it is about a tenth cheaper, and the
    engine takes it for every entity of a backfill."""
    delta = moment - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def label(kind: str, start: date) -> str:
    """How a period is written on the command line and in ids: ``2026-12-04``, ``2026-W49``, ``2026-12``."""
    if kind == "day":
        return start.isoformat()
    if kind == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"


def parse_period(text: str) -> tuple[str, date]:
    """The inverse of :func:`label`; :class:`BadPeriod` for anything else."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return "day", date.fromisoformat(text)
        if re.fullmatch(r"\d{4}-W\d{2}", text):
            return "week", date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return "month", date(int(text[:4]), int(text[5:]), 1)
    except ValueError as exc:
        raise BadPeriod(f"{text!r} is not a valid period: {exc}") from exc
    raise BadPeriod(f"{text!r} is not a period; write 2026-12-04 (day), 2026-W49 (week) or 2026-12 (month)")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
