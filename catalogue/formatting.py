"""Times, dates and numbers as a reader in Kazakhstan expects them, in Kazakh, Russian or English (Babel, CLDR).

Times are shown in the city's local time (Asia/Almaty, UTC+5 since 1 March 2024, unless the city registry says
otherwise), never in UTC; a value without an offset is taken as already local.

    >>> local_time("2025-02-14T08:00:00Z", "ru")
    '14 февр. 2025, 13:00'
    >>> number(1234567.5, "kk"), number(1234567.5, "en")
    ('1\\xa0234\\xa0567,5', '1,234,567.5')
    >>> period("2025-01-01T00:00:00+05:00", "2025-03-31T00:00:00+05:00", "en")
    'Jan 1\u2009–\u2009Mar 31, 2025'
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_interval
from babel.numbers import format_decimal, format_percent

from schemas.cities import CityRegistry

DEFAULT_ZONE = ZoneInfo("Asia/Almaty")
TIME_PATTERN = "d MMM y, HH:mm"


def zone_of(city: str | None) -> ZoneInfo:
    """The city's time zone from the registry; Asia/Almaty for national data and unknown codes."""
    cities = CityRegistry.load()
    return cities.get(city).zone if city and cities.is_known(city) else DEFAULT_ZONE


def parse_moment(value: Any) -> datetime | date | None:
    """An ISO 8601 date-time (aware or local) or date, else ``None``."""
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit() or value[4] != "-":
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def local_time(value: Any, locale: str, zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """A date-time in local time, e.g. ``14 ақп. 2025, 13:00``; ``—`` when there is none."""
    moment = parse_moment(value)
    if moment is None:
        return "—" if not value else str(value)
    if not isinstance(moment, datetime):
        return format_date(moment, "medium", locale=locale)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return format_datetime(moment, TIME_PATTERN, tzinfo=zone, locale=locale)


def local_date(value: Any, locale: str, zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """Only the local date: ``local_date("2025-03-01", "en")`` is ``'Mar 1, 2025'``."""
    moment = parse_moment(value)
    if moment is None:
        return "—" if not value else str(value)
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(zone).date()
    return format_date(moment, "medium", locale=locale)


def period(start: Any, end: Any, locale: str, zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """A period with its start and end, as one range (``14 – 16 Feb 2025``); one side may be missing."""
    first, last = parse_moment(start), parse_moment(end)
    if first is None and last is None:
        return "—"
    if first is None or last is None:
        return f"… – {local_date(end, locale, zone)}" if first is None else f"{local_date(start, locale, zone)} – …"

    def day(moment: datetime | date) -> date:
        if isinstance(moment, datetime):
            return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(zone).date()
        return moment

    a, b = sorted((day(first), day(last)))
    if a == b:
        return format_date(a, "medium", locale=locale)
    return format_interval(a, b, "yMMMd", locale=locale)


def number(value: Any, locale: str) -> str:
    """A number with the locale's separators; decimal strings (amounts) keep their precision."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return format_decimal(amount, format="#,##0.##", locale=locale)


def money(value: Any, locale: str) -> str:
    """An amount with two decimals: ``money("1914220.1", "ru")`` is ``'1\xa0914\xa0220,10'``."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return format_decimal(amount, format="#,##0.00", locale=locale)


def percent(value: Any, locale: str) -> str:
    """A ratio as a percentage: ``percent(0.873, "ru")`` is ``'87,3\\xa0%'``."""
    return format_percent(float(value), format="#,##0.#%", locale=locale)
