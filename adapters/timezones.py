"""The time-zone rules every legacy time is converted with, checked before a run.

Naive local times become offset times through the IANA database (``zoneinfo``). Python finds it on the system
first and in the ``tzdata`` package (a dependency) otherwise, so a machine without one still works; but a system
database older than 2024a still puts all of Kazakhstan on +06:00 after 1 March 2024, and every time converted
with it would be an hour off without any error. :func:`check_rules` refuses such a database.

    >>> check_rules()  # the database in use knows the 2024 change
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.errors import AdapterError

KNOWN = (
    # zone, a moment there (naive, local), the offset it must have
    ("Asia/Almaty", datetime(2024, 2, 28, 12), timedelta(hours=6)),
    ("Asia/Almaty", datetime(2024, 3, 2, 12), timedelta(hours=5)),
)
"""Moments whose offsets a current database gives: Kazakhstan moved to UTC+5 at 00:00 on 1 March 2024."""


class TimeZoneRulesError(AdapterError):
    """The time-zone database is missing a zone or predates a rule the adapters rely on."""


@lru_cache(maxsize=1)
def check_rules() -> None:
    """Raise :class:`TimeZoneRulesError` unless the database in use gives the offsets of :data:`KNOWN`."""
    for zone, moment, expected in KNOWN:
        try:
            offset = moment.replace(tzinfo=ZoneInfo(zone)).utcoffset()
        except ZoneInfoNotFoundError:
            raise TimeZoneRulesError(
                f"no time-zone data for {zone}: install the tzdata package (pip install tzdata)"
            ) from None
        if offset != expected:
            raise TimeZoneRulesError(
                f"the time-zone database gives {zone} {_hours(offset)} on {moment:%Y-%m-%d}, not {_hours(expected)}: "
                "it predates tzdata 2024a (Kazakhstan is on UTC+5 since 1 March 2024); update the system's "
                "tzdata, or let Python use the tzdata package with PYTHONTZPATH= (empty)"
            )


def _hours(offset: timedelta | None) -> str:
    if offset is None:
        return "no offset"
    minutes = int(offset.total_seconds()) // 60
    return f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
