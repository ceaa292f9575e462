"""A preview a resident can read: chosen columns with labels, values translated and formatted for the locale.

Enumerated values get their label (``veryUnhealthy`` -> ``өте зиянды``), texts in three languages show the
reader's, times are local, numbers carry the locale's separators, ``urn:ngsi-ld:`` references show only their
local part, opening hours name the days in the reader's language. A cell holding text as its source wrote it
(a station's name, a note) is marked ``verbatim``: pages wrap it in ``translate="no"``.

    >>> table = preview("AirQualityObserved", [{"dateObserved": "2025-02-14T08:00:00Z", "pm25": 1234.5,
    ...                                         "airQualityLevel": "hazardous"}], "ru")
    >>> [c.text for c in table.rows[0] if c.text]
    ['14 февр. 2025, 13:00', '1\\xa0234,5', 'опасное']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import get_day_names

from catalogue.formatting import DEFAULT_ZONE, local_date, local_time, money, number, parse_moment, percent
from catalogue.i18n import pick
from catalogue.vocabulary import VOCABULARY

JsonObject = dict[str, Any]
_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_CODE = re.compile(r"\b(Mo|Tu|We|Th|Fr|Sa|Su)\b")
_LANGUAGES = {"kk", "ru", "en"}


@dataclass(frozen=True)
class Cell:
    text: str
    verbatim: bool = False
    numeric: bool = False


@dataclass
class Preview:
    """Labelled columns and rows of cells; ``hidden`` counts cells withheld to protect people."""

    columns: list[tuple[str, str]]
    rows: list[list[Cell]]
    hidden: int = 0
    hidden_rows: int = 0
    notes: list[str] = field(default_factory=list)


def lookup(row: JsonObject, path: str) -> Any:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def opening_hours(text: str, locale: str) -> str:
    """OpenStreetMap day codes in the reader's language: ``Mo-Fr 08:00-20:00`` -> ``пн–пт 08:00–20:00``."""
    names = get_day_names("abbreviated", context="stand-alone", locale=locale)
    readable = _DAY_CODE.sub(lambda m: str(names[_DAYS.index(m.group(1))]), text)
    return readable.replace("-", "–")


def _is_time_column(column: str) -> bool:
    last = column.rsplit(".", 1)[-1]
    return last.startswith(("date", "period", "valid")) or last in ("day", "effectiveSince")


def cell(type_name: str, column: str, value: Any, row: JsonObject, *, locale: str, zone: ZoneInfo) -> Cell:
    """One value as the reader sees it."""
    if value is None or value in ("", []):
        return Cell("")
    name = column.rsplit(".", 1)[-1]
    if isinstance(value, dict) and set(value) & _LANGUAGES:
        return Cell(pick(value, locale))
    label = VOCABULARY.value(type_name, column, value, locale)
    if label is not None:
        return Cell(label)
    if name == "unit":
        return Cell(VOCABULARY.unit(str(value), locale))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if name in ("value", "target") and row.get("unit") == "1":
            return Cell(percent(value, locale), numeric=True)
        return Cell(number(value, locale), numeric=True)
    if isinstance(value, list):
        parts = [cell(type_name, column, item, row, locale=locale, zone=zone) for item in value]
        return Cell("; ".join(p.text for p in parts if p.text), verbatim=any(p.verbatim for p in parts))
    if isinstance(value, dict):
        return Cell("")  # nested structures belong to the JSON download, not a table cell
    text = str(value)
    if name == "amount" and parse_moment(text) is None:
        return Cell(money(text, locale), numeric=True)
    if _is_time_column(column) and parse_moment(text) is not None:
        return Cell(local_date(text, locale, zone) if len(text) == 10 else local_time(text, locale, zone))
    if text.startswith("urn:ngsi-ld:"):
        return Cell(text.rsplit(":", 1)[-1], verbatim=True)
    if name == "openingHours":
        return Cell(opening_hours(text, locale), verbatim=True)
    return Cell(text, verbatim=True)


def preview(
    type_name: str,
    rows: Iterable[JsonObject],
    locale: str,
    zone: ZoneInfo = DEFAULT_ZONE,
    columns: list[str] | None = None,
) -> Preview:
    """The readable table of ``rows``; only the columns that hold something in these rows are kept."""
    wanted = columns or VOCABULARY.columns(type_name)
    rows = list(rows)
    used = [c for c in wanted if any(lookup(r, c) not in (None, "", []) for r in rows)] or wanted
    table = Preview([(c, VOCABULARY.field(c, locale)) for c in used], [])
    for row in rows:
        if row.get("suppressed"):
            table.hidden_rows += 1
            table.hidden += sum(1 for c in used if c in ("count", "amount"))
        hide = bool(row.get("suppressed"))
        table.rows.append(
            [
                Cell("—")
                if hide and c in ("count", "amount")
                else cell(type_name, c, lookup(row, c), row, locale=locale, zone=zone)
                for c in used
            ]
        )
    return table
