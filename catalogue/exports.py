"""Streaming encoders for downloads: CSV, JSON and GeoJSON, one chunk per row.

CSV cells are neutralised against spreadsheet formula injection (OWASP "CSV Injection"): a cell starting with
``= + - @`` (or full-width ``＝ ＋ － ＠``), after any leading spaces, tabs or line breaks, or with a tab or a
carriage return, gets a leading apostrophe, so a spreadsheet shows it as text.

    >>> neutralise("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> flatten({"name": {"kk": "Саябақ", "en": "Park"}, "n": 3, "ok": True})
    {'name': '{"kk":"Саябақ","en":"Park"}', 'n': '3', 'ok': 'true'}
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson

JsonObject = dict[str, Any]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "geojson": "application/geo+json",
}


FULL_WIDTH_PREFIXES = ("\uff1d", "\uff0b", "\uff0d", "\uff20")
"""Full-width ＝＋－＠: spreadsheets with East Asian input normalise them to formula starters."""
_LEADING_BLANKS = " \t\r\n\u3000\u00a0"


def neutralise(cell: str) -> str:
    """Make a CSV cell inert in spreadsheets, also when the formula hides behind leading blanks or full-width signs.

    >>> neutralise("  =1+1"), neutralise("\uff1dSUM(A1)"), neutralise("ok")
    ("'  =1+1", "'＝SUM(A1)", 'ok')
    """
    if cell.startswith(FORMULA_PREFIXES) or cell.lstrip(_LEADING_BLANKS).startswith(
        FORMULA_PREFIXES + FULL_WIDTH_PREFIXES
    ):
        return "'" + cell
    return cell


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def flatten(row: JsonObject) -> dict[str, str]:
    """Top-level values as text: nested objects and arrays become compact JSON."""
    return {key: _text(value) for key, value in row.items()}


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([neutralise(v) for v in values])
    return buffer.getvalue()


async def stream_csv(columns: list[str], rows: AsyncIterator[JsonObject]) -> AsyncIterator[bytes]:
    """A CSV file with a header line; every cell neutralised. Starts with a BOM so Excel reads UTF-8."""
    yield ("\ufeff" + _csv_line(columns)).encode()
    async for row in rows:
        flat = flatten(row)
        yield _csv_line([flat.get(column, "") for column in columns]).encode()


async def stream_json(rows: AsyncIterator[JsonObject]) -> AsyncIterator[bytes]:
    """A JSON array, written one element at a time."""
    first = True
    yield b"["
    async for row in rows:
        yield (b"" if first else b",") + orjson.dumps(row)
        first = False
    yield b"]"


async def stream_geojson(rows: AsyncIterator[JsonObject], geometry_field: str = "location") -> AsyncIterator[bytes]:
    """A GeoJSON FeatureCollection; entities without a geometry are features with ``geometry: null``."""
    first = True
    yield b'{"type":"FeatureCollection","features":['
    async for row in rows:
        geometry = row.get(geometry_field)
        properties = {key: value for key, value in row.items() if key != geometry_field}
        feature = {"type": "Feature", "id": row.get("id"), "geometry": geometry, "properties": properties}
        yield (b"" if first else b",") + orjson.dumps(feature)
        first = False
    yield b"]}"
