"""The flat table of a canonical type: one column per scalar, derived from its JSON Schema.

Downloads in CSV, ``datastore_search`` field types and each dataset's Frictionless ``datapackage.json`` all
read the same columns, so a spreadsheet, a CKAN client and ``frictionless validate`` see one table:

- a scalar field is one column (Table Schema types: string, integer, number, boolean, datetime, date);
- a text in three languages (``LocalizedText``) is ``name.kk``, ``name.ru``, ``name.en``;
- an object of scalars (``address``) is one column per property (``address.district``);
- a GeoJSON point is ``location.longitude`` and ``location.latitude``; other geometries stay GeoJSON text;
- anything deeper (lists, nested objects) stays one column holding JSON text (the JSON download keeps it whole).

    >>> from schemas.registry import SchemaRegistry
    >>> registry = SchemaRegistry.load()
    >>> names = [c.name for c in table_columns(registry, registry.get("AirQualityObserved"))]
    >>> names[:4], "location.latitude" in names, "address.district" in names
    (['id', 'type', 'city', 'dateModified'], True, True)
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from catalogue.exports import neutralise
from catalogue.privacy import AGGREGATED, public_fields
from schemas.registry import SchemaRegistry, SchemaVersion

JsonObject = dict[str, Any]
LANGUAGES = ("kk", "ru", "en")
_SCALARS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
_FORMATS = {"date-time": "datetime", "date": "date"}


@dataclass(frozen=True)
class Column:
    """One column of the flat table; ``get`` reads its value out of a (public) entity."""

    name: str
    type: str
    """Table Schema type: string, integer, number, boolean, datetime, date, object, array, geojson."""
    description: str = ""
    get: Callable[[JsonObject], Any] = field(default=lambda row: None, compare=False, repr=False)

    @property
    def nested(self) -> bool:
        """Whether the values are JSON structures (CKAN's DataStore calls the type ``json``)."""
        return self.type in ("object", "array", "geojson")


def resolve(registry: SchemaRegistry, spec: JsonObject, document: JsonObject | None = None) -> JsonObject:
    """A property's schema with ``$ref`` followed, to the shared definitions or to the bundled document's own
    ``$defs`` (``#/$defs/Point``); local keywords win."""
    seen = 0
    while "$ref" in spec and seen < 8:
        ref = str(spec["$ref"])
        if ref.startswith("#/") and document is not None:
            target: Any = document
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
        else:
            target = registry.shared.get(ref, {})
        spec = {**target, **{k: v for k, v in spec.items() if k != "$ref"}}
        seen += 1
    return spec


def _scalar_type(spec: JsonObject) -> str | None:
    if spec.get("format") in _FORMATS:
        return _FORMATS[spec["format"]]
    kinds = spec.get("type")
    if isinstance(kinds, list):
        kinds = next((k for k in kinds if k != "null"), None)
    if kinds in _SCALARS:
        return _SCALARS[kinds]
    if "enum" in spec or "const" in spec:
        values = spec.get("enum") or [spec.get("const")]
        if all(isinstance(v, bool) for v in values):
            return "boolean"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "integer"
        return "string"
    return None


def _path(*keys: str | int) -> Callable[[JsonObject], Any]:
    def read(row: JsonObject) -> Any:
        value: Any = row
        for key in keys:
            if isinstance(key, int):
                value = value[key] if isinstance(value, list) and len(value) > key else None
            else:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                return None
        return value

    return read


def _columns_of(registry: SchemaRegistry, name: str, raw: JsonObject, document: JsonObject) -> list[Column]:
    spec = resolve(registry, raw, document)
    text = str(spec.get("description") or "")
    scalar = _scalar_type(spec)
    if scalar is not None:
        return [Column(name, scalar, text, _path(name))]
    properties = spec.get("properties") or {}
    if spec.get("type") == "object" and set(properties) == {"type", "coordinates"}:
        return [
            Column(f"{name}.longitude", "number", "WGS 84 longitude", _path(name, "coordinates", 0)),
            Column(f"{name}.latitude", "number", "WGS 84 latitude", _path(name, "coordinates", 1)),
        ]
    if "anyOf" in spec or "oneOf" in spec:
        return [
            Column(
                name,
                "geojson" if "Geometry" in str(raw.get("$ref")) or "geometr" in text.lower() else "object",
                text,
                _path(name),
            )
        ]
    if properties and set(properties) >= set(LANGUAGES) and set(properties) <= {*LANGUAGES, "qq"}:
        return [Column(f"{name}.{loc}", "string", f"{text} ({loc})", _path(name, loc)) for loc in LANGUAGES]
    if properties:
        out = []
        for key, child in properties.items():
            child_spec = resolve(registry, child, document)
            kind = _scalar_type(child_spec)
            out.append(
                Column(
                    f"{name}.{key}",
                    kind or ("array" if child_spec.get("type") == "array" else "object"),
                    str(child_spec.get("description") or ""),
                    _path(name, key),
                )
            )
        return out
    return [Column(name, "array" if spec.get("type") == "array" else "object", text, _path(name))]


def table_columns(registry: SchemaRegistry, version: SchemaVersion) -> list[Column]:
    """The flat columns of a type's public rows (aggregated types: the published table's columns)."""
    spec = AGGREGATED.get(version.type_name)
    if spec is not None:
        kinds = {"day": "date", "count": "integer", "amount": "number", "suppressed": "boolean"}
        return [Column(c, kinds.get(c, "string"), "", _path(c)) for c in spec.columns]
    properties = version.document.get("properties", {})
    return [
        column
        for name in public_fields(version)
        for column in _columns_of(registry, name, properties[name], version.document)
    ]


def top_level_types(registry: SchemaRegistry, version: SchemaVersion) -> dict[str, str]:
    """Each public top-level field's Table Schema type, ``object``/``array`` for nested values."""
    properties = version.document.get("properties", {})
    out = {}
    for name in public_fields(version):
        spec = resolve(registry, properties[name], version.document)
        out[name] = _scalar_type(spec) or ("array" if spec.get("type") == "array" else "object")
    return out


def flat_row(columns: list[Column], row: JsonObject) -> JsonObject:
    """The row as ``{column name: value}``; nested values stay Python structures (JSON in a CSV cell)."""
    return {column.name: column.get(row) for column in columns}


def _cell(value: Any) -> str:
    # A JSON number or boolean cannot carry a formula: it is written as it is (a typed reader such as
    # frictionless must see -9.6, not '-9.6). Text goes through the formula neutralisation of every download.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(orjson.dumps(value).decode())


async def stream_flat_csv(columns: list[Column], rows: AsyncIterator[JsonObject]) -> AsyncIterator[bytes]:
    """A CSV of the flat table: a header of column names, one line per row, UTF-8 with a BOM for Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.name for column in columns])
    yield ("\ufeff" + buffer.getvalue()).encode()
    async for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(column.get(row)) for column in columns])
        yield buffer.getvalue().encode()
