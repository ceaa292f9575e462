"""Streaming encoders: CSV neutralises formulas, JSON and GeoJSON stay valid."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from catalogue.exports import neutralise, stream_csv, stream_geojson, stream_json


async def _rows(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield row


async def _collect(chunks: AsyncIterator[bytes]) -> str:
    return b"".join([chunk async for chunk in chunks]).decode("utf-8-sig")


@pytest.mark.parametrize("dangerous", ["=1+2", "+7 701", "-3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("x")'])
def test_formula_cells_get_a_leading_apostrophe(dangerous: str) -> None:
    assert neutralise(dangerous) == "'" + dangerous


def test_plain_cells_are_untouched() -> None:
    assert neutralise("Астана 42") == "Астана 42"


async def test_csv_is_parseable_and_every_cell_is_inert() -> None:
    rows = [{"name": "=cmd|' /C calc'!A0", "n": 3, "nested": {"kk": "Су"}}, {"name": "ok", "n": -1}]
    text = await _collect(stream_csv(["name", "n", "nested"], _rows(rows)))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["name", "n", "nested"]
    assert parsed[1] == ["'=cmd|' /C calc'!A0", "3", '{"kk":"Су"}']
    assert parsed[2] == ["ok", "'-1", ""]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in parsed for cell in row)


async def test_json_and_geojson_are_valid_documents() -> None:
    rows = [{"id": "a", "location": {"type": "Point", "coordinates": [71.4, 51.1]}}, {"id": "b"}]
    assert json.loads(await _collect(stream_json(_rows(rows)))) == rows
    geo = json.loads(await _collect(stream_geojson(_rows(rows))))
    assert geo["type"] == "FeatureCollection"
    assert geo["features"][0]["geometry"]["coordinates"] == [71.4, 51.1]
    assert geo["features"][1]["geometry"] is None
    assert json.loads(await _collect(stream_json(_rows([])))) == []
