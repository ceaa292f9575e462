"""What residents read about the data: column labels, enumerated values, units and a description per type.

The words live in ``catalogue/data/vocabulary.json`` (one table per kind, each entry in kk, ru and en), so a
missing translation is a missing entry that a test finds, not a code change.

    >>> VOCABULARY.field("pm25", "ru")
    'PM2.5, мкг/м³'
    >>> VOCABULARY.value("ServiceRequest", "status", "open", "kk")
    'ашық'
    >>> VOCABULARY.columns("PaymentTransaction")
    ['district', 'day', 'serviceCategory', 'count', 'amount']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

Translated = dict[str, str]


@dataclass(frozen=True)
class ChartSpec:
    """Which column is the time axis and which numeric columns are drawn (``kind``: ``lines`` or ``bars``)."""

    time: str
    series: tuple[str, ...]
    kind: str = "lines"
    split: str | None = None
    """A column whose values each get their own line (meter type, indicator): never mix units on one line."""


class Vocabulary:
    """Labels and descriptions read from the bundled table."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.fields: dict[str, Translated] = document["fields"]
        self.units: dict[str, Translated] = document["units"]
        self.values: dict[str, dict[str, Translated]] = document["values"]
        self.types: dict[str, dict[str, Any]] = document["types"]

    @classmethod
    def load(cls) -> Vocabulary:
        text = files("catalogue").joinpath("data", "vocabulary.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    def field(self, name: str, locale: str) -> str:
        """The column's label; the field name itself when the table has none (a test keeps that from pages)."""
        entry = self.fields.get(name)
        return entry[locale] if entry else name

    def value(self, type_name: str, field: str, value: Any, locale: str) -> str | None:
        """The label of an enumerated value, looked up as ``Type.field`` first, then ``field``; else ``None``."""
        key = ("true" if value else "false") if isinstance(value, bool) else str(value)
        for table in (f"{type_name}.{field}", field, "boolean" if isinstance(value, bool) else ""):
            entry = self.values.get(table, {}).get(key)
            if entry:
                return entry[locale]
        return None

    def unit(self, code: str, locale: str) -> str:
        entry = self.units.get(code)
        return entry[locale] if entry else code

    def columns(self, type_name: str) -> list[str]:
        """The columns a preview shows for a type (dotted paths into nested objects)."""
        return list(self.types.get(type_name, {}).get("columns", []))

    def description(self, type_name: str) -> Translated | None:
        found: Translated | None = self.types.get(type_name, {}).get("description")
        return found

    def chart(self, type_name: str) -> ChartSpec | None:
        spec = self.types.get(type_name, {}).get("chart")
        if not spec:
            return None
        return ChartSpec(spec["time"], tuple(spec["series"]), spec.get("kind", "lines"), spec.get("split"))


VOCABULARY = Vocabulary.load()
