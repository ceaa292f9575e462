"""Value conversions for legacy exports: local times, decimal commas, Russian and Kazakh words, phone numbers.

Every converter takes the cell as read (a string from CSV, or a number, date or datetime from XLSX and DBF) and
returns a JSON value, or raises :class:`~adapters.errors.ConversionError` with a message naming the value.

    >>> local_datetime("29.02.2024 23:30")
    '2024-02-29T23:30:00+06:00'
    >>> local_datetime("01.03.2024 00:30")
    '2024-03-01T00:30:00+05:00'
    >>> decimal_string("1 234 567,5")
    '1234567.50'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from adapters.errors import ConversionError

Converter = Callable[..., Any]

_DATETIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
_SEPARATORS = str.maketrans("", "", " \u00a0\u202f\u2009'")
_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_TWO_PLACES = Decimal("0.01")


def _isoformat(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.utcoffset() == timedelta(0) else text


def _exact_local(text: str) -> datetime | None:
    """``DD.MM.YYYY HH:MM[:SS]`` or ``DD.MM.YYYY`` written out in full, without strptime (which costs ~10x).

    None for anything else, including impossible dates, so that strptime has the final word on those.
    """
    size = len(text)
    if size not in (10, 16, 19) or not text.isascii() or text[2] != "." or text[5] != ".":
        return None
    fields = (text[0:2], text[3:5], text[6:10], text[11:13] or "00", text[14:16] or "00", text[17:19] or "00")
    if size > 10 and (text[10] != " " or text[13] != ":" or (size == 19 and text[16] != ":")):
        return None
    if not all(f.isdigit() for f in fields):
        return None
    day, month, year, hour, minute, second = map(int, fields)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


@lru_cache(maxsize=4096)  # bounded small: 65536 dates held ~14 MiB, and parsing no longer needs strptime
def _parse_local(text: str, zone: str) -> str:
    exact = _exact_local(text)
    if exact is not None:
        return _isoformat(exact.replace(tzinfo=ZoneInfo(zone)))
    for fmt in _DATETIME_FORMATS:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return _isoformat(naive.replace(tzinfo=ZoneInfo(zone)))
    if len(text) > 10 and text[4:5] == "-":  # ISO 8601 with an offset or Z: kept as given
        moment = _one_form(text, ISO_8601, zone)
        if moment is not None:
            return _isoformat(moment.replace(microsecond=0))
    raise ConversionError(f"not a date/time in DD.MM.YYYY[ HH:MM[:SS]] form (or ISO 8601): {text!r}")


_LOCAL = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})(?: ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")


@lru_cache(maxsize=1024)
def _day_offset(day: str, month: str, year: str, zone: str) -> str | None:
    """The UTC offset, as ``isoformat`` writes it, that holds all day long in ``zone``; None when the offset
    changes during that day (the exact path then decides each time) or there is no such day."""
    try:
        midnight = datetime(int(year), int(month), int(day), tzinfo=ZoneInfo(zone))
    except ValueError:
        return None
    offset = midnight.utcoffset()
    # Transitions fall on the hour or the half hour; two in one day that cancel out are unknown.
    moments = [midnight + timedelta(minutes=30 * n) for n in range(1, 48)] + [midnight + timedelta(seconds=86399)]
    if any(moment.utcoffset() != offset for moment in moments):
        return None
    return "Z" if offset == timedelta(0) else midnight.isoformat()[19:]


def _fast_local(text: str, zone: str) -> str | None:
    """``DD.MM.YYYY[ HH:MM[:SS]]`` by slicing, with the day's offset remembered: a fifth of the exact path's
    cost. None for anything else, including impossible times and days on which the offset changes."""
    match = _LOCAL.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups("00")
    if hour >= "24" or minute >= "60" or second >= "60":
        return None
    offset = _day_offset(day, month, year, zone)
    if offset is None:
        return None
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{offset}"


_TOKENS = (("YYYY", "%Y"), ("YY", "%y"), ("DD", "%d"), ("HH", "%H"), ("SS", "%S"))
ISO_8601 = "ISO 8601"
"""The format name for ISO 8601 (``2024-03-01T10:00:00+05:00``, ``...Z``, or without an offset: local)."""


@lru_cache(maxsize=256)
def strptime_format(form: str) -> str:
    """A mapping's date format (``DD.MM.YYYY HH:MM``; ``MM`` is the month before ``HH`` and the minutes after it)
    as a strptime format; one with ``%`` in it is taken as one already.

    >>> strptime_format("DD.MM.YY"), strptime_format("YYYY-MM-DD HH:MM:SS")
    ('%d.%m.%y', '%Y-%m-%d %H:%M:%S')
    """
    if "%" in form:
        return form
    hour = form.find("HH")
    day_part, time_part = (form, "") if hour < 0 else (form[:hour], form[hour:])
    for token, code in _TOKENS:
        day_part, time_part = day_part.replace(token, code), time_part.replace(token, code)
    return day_part.replace("MM", "%m") + time_part.replace("MM", "%M")


def _one_form(text: str, form: str, zone: str) -> datetime | None:
    if form == ISO_8601:
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
    else:
        try:
            moment = datetime.strptime(text, strptime_format(form))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


@lru_cache(maxsize=4096)
def _by_forms(text: str, forms: tuple[str, ...], zone: str) -> str:
    """``text`` read by the first of ``forms`` that fits; refused when two fitting forms disagree."""
    found: dict[datetime, str] = {}
    for form in forms:
        moment = _one_form(text, form, zone)
        if moment is not None:
            found.setdefault(moment, form)
    if not found:
        raise ConversionError(f"not a date/time in any of the forms {list(forms)}: {text!r}")
    if len(found) > 1:
        readings = "; ".join(f"{_isoformat(m)} as {f}" for m, f in found.items())
        raise ConversionError(f"ambiguous date/time {text!r}: {readings}")
    return _isoformat(next(iter(found)).replace(microsecond=0))


def local_datetime(value: Any, zone: str = "Asia/Almaty", formats: list[str] | tuple[str, ...] | None = None) -> str:
    """A naive local date/time (``DD.MM.YYYY HH:MM``, a bare date meaning midnight) as an offset date-time.

    The offset comes from the time-zone database, so times before 2024-03-01 get +06:00 and later ones +05:00.
    A value that carries its own offset (ISO 8601 with ``+05:00`` or ``Z``) keeps it. ``formats`` lists the forms
    a column may hold (``DD.MM.YY``, ``DD/MM/YYYY``, ``YYYY-MM-DD HH:MM``, ``ISO 8601``, or strptime formats);
    a value two of them read differently (``03/04/2024`` with ``DD/MM/YYYY`` and ``MM/DD/YYYY``) is refused.

    >>> local_datetime("28.02.2024")
    '2024-02-28T00:00:00+06:00'
    >>> local_datetime("2024-03-01T04:30:00Z")
    '2024-03-01T04:30:00Z'
    >>> local_datetime("01/03/24 10:00", formats=["DD/MM/YY HH:MM"])
    '2024-03-01T10:00:00+05:00'
    """
    if formats and not isinstance(value, datetime | date):
        return _by_forms(" ".join(str(value).split()), tuple(formats), zone)
    if value.__class__ is str:
        fast = _fast_local(value, zone)
        if fast is not None:
            return fast
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))
        return _isoformat(moment.replace(microsecond=0))
    if isinstance(value, date):
        return _isoformat(datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(zone)))
    return _parse_local(" ".join(str(value).split()), zone)


def local_date(value: Any, formats: list[str] | tuple[str, ...] | None = None) -> str:
    """A ``DD.MM.YYYY`` date (or a date object) as ``YYYY-MM-DD``; ``formats`` as for :func:`local_datetime`.

    >>> local_date("01.03.2024")
    '2024-03-01'
    >>> local_date("01/03/24", formats=["DD/MM/YY"])
    '2024-03-01'
    """
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if formats:
        return _by_forms(text, tuple(formats), "UTC")[:10]
    for fmt in ("%d.%m.%Y", "%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise ConversionError(f"not a date in DD.MM.YYYY form: {text!r}")


def epoch_datetime(value: Any, zone: str = "Asia/Almaty") -> str:
    """POSIX seconds as an offset date-time in the city's zone.

    >>> epoch_datetime(1709251200)
    '2024-03-01T05:00:00+05:00'
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"not a POSIX time: {value!r}") from exc
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, ValueError, OSError) as exc:  # e.g. milliseconds where seconds are expected
        hint = " (milliseconds where seconds are expected?)" if abs(seconds) > 1e11 else ""
        raise ConversionError(f"not a POSIX time in seconds: {value!r} is out of range{hint}") from exc
    return _isoformat(moment.astimezone(ZoneInfo(zone)))


def to_decimal(value: Any) -> Decimal:
    """A number with a decimal comma and space/NBSP thousands separators, exactly, as a Decimal.

    >>> to_decimal("12\u00a0500,75")
    Decimal('12500.75')
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ConversionError(f"not a number: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that round-trips, not the binary expansion
    text = str(value).translate(_SEPARATORS).replace(",", ".")
    if not _DECIMAL.match(text):
        raise ConversionError(f"not a number: {value!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes these
        raise ConversionError(f"not a number: {value!r}") from exc


def decimal_string(value: Any, places: int = 2) -> str:
    """A money amount as a decimal string with ``places`` fraction digits; never goes through float.

    >>> decimal_string("1 500")
    '1500.00'
    """
    amount = to_decimal(value)
    quantum = _TWO_PLACES if places == 2 else Decimal(1).scaleb(-places)
    if amount.quantize(quantum) != amount:
        raise ConversionError(f"more than {places} fraction digits: {value!r}")
    return str(amount.quantize(quantum))


def number(value: Any) -> int | float:
    """A measurement (not money) as a JSON number; integers stay integers.

    >>> number("51,1328")
    51.1328
    """
    if isinstance(value, str):
        # The common cell needs no separator removed; then the text itself is the decimal, and float() of it
        # equals float() of the Decimal (both round the same digits once).
        plain = value.replace(",", ".")
        if _DECIMAL.match(plain):
            return float(plain) if "." in plain else int(plain)
    amount = to_decimal(value)
    return int(amount) if amount == amount.to_integral_value() and "." not in str(amount) else float(amount)


def integer(value: Any) -> int:
    amount = to_decimal(value)
    if amount != amount.to_integral_value():
        raise ConversionError(f"not a whole number: {value!r}")
    return int(amount)


def text(value: Any) -> str:
    """Text with runs of white space (including NBSP and line breaks) collapsed."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


_TRUE = {"да", "иә", "бар", "yes", "y", "true", "1", "+", "t"}
_FALSE = {"нет", "жоқ", "no", "n", "false", "0", "-", "f"}


def boolean(value: Any) -> bool:
    """Russian, Kazakh and English yes/no.

    >>> boolean("Иә"), boolean("нет")
    (True, False)
    """
    if isinstance(value, bool):
        return value
    key = text(value).casefold()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ConversionError(f"not yes/no (да/нет, иә/жоқ): {value!r}")


_PHONE_MARKS = b" ()-+./"


def phone_kz(value: Any) -> str:
    """A Kazakhstan phone number in any usual writing as E.164.

    >>> phone_kz("8 (701) 555-01-23")
    '+77015550123'
    """
    text = str(value)
    digits = text.encode().translate(None, _PHONE_MARKS).decode() if text.isascii() else text
    if not digits.isdecimal():  # other characters than the usual marks: keep the digits, as re's \D would
        digits = "".join(filter(str.isdecimal, text))
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10:
        return "+7" + digits
    raise ConversionError(f"not a Kazakhstan phone number: {value!r}")


def normalise_key(value: Any) -> str:
    """How headers and enum words are compared: case-folded, ё as е, white space collapsed.

    >>> normalise_key("  Дата\u00a0ЗАКРЫТИЯ ")
    'дата закрытия'
    """
    return " ".join(str(value).replace("ё", "е").replace("Ё", "Е").split()).casefold()


_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._~-]+")


def local_id(value: Any) -> str:
    """Text made safe for the ``<localId>`` part of an entity URN.

    >>> local_id("1-0:1.8.0 01.03.2024 00:00")
    '1-0-1.8.0-01.03.2024-00-00'
    """
    return _UNSAFE_ID.sub("-", text(value)).strip("-.~_") or "x"


def pseudonym(value: Any, key_env: str = "QALA_PSEUDONYM_KEY", dev_key: str | None = None) -> str:
    """A keyed HMAC-SHA256 pseudonym (base64url, 43 characters) of an IIN, card or account number.

    The key comes from the environment variable ``key_env``; ``dev_key`` (for samples only) is used when it is
    unset. A plain hash would not do: the IIN space is small enough to enumerate.

    >>> len(pseudonym("9398 0000 0000 1234", dev_key="k"))
    43
    """
    key = os.environ.get(key_env) or dev_key
    if not key:
        raise ConversionError(f"no pseudonymisation key: set {key_env}")
    digest = hmac.new(key.encode(), re.sub(r"\s", "", str(value)).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


CONVERTERS: dict[str, Converter] = {
    "text": text,
    "local_datetime": local_datetime,
    "local_date": local_date,
    "epoch_datetime": epoch_datetime,
    "decimal": decimal_string,
    "number": number,
    "integer": integer,
    "boolean": boolean,
    "phone_kz": phone_kz,
    "local_id": local_id,
    "pseudonym": pseudonym,
}
"""Converters a mapping may name in ``convert:``; extra keyword arguments come from ``args:``."""
