"""The KPI book: versioned data files in ``kpis/``, validated against ``kpis/book.schema.json``.

    >>> book = KpiBook.load()
    >>> book.get("payments.count").formula.aggregate
    'count'
    >>> book.get("payments.count").target_for("shymkent", days=30)
    Fraction(600000, 1)

A city's targets and weights come from ``kpis/overrides.yaml`` when it names them, else from the book (the
national methodology's defaults). Every figure the engine writes names the book's version.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cityscore.errors import BookError, UnknownKpi
from cityscore.score import exact
from schemas import SchemaRegistry
from schemas.cities import CityRegistry

KPIS_DIR = Path(__file__).resolve().parent.parent / "kpis"
BOOK_FILE = KPIS_DIR / "book.yaml"
OVERRIDES_FILE = KPIS_DIR / "overrides.yaml"
SCHEMA_FILE = KPIS_DIR / "book.schema.json"
BOOK_NAME = "Qala KPI book"

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Formula:
    reads: tuple[str, ...]
    time: tuple[str, ...]
    aggregate: str
    where: tuple[Condition, ...] = ()
    numerator_where: tuple[Condition, ...] = ()
    value: JsonObject | None = None
    scale: int = 1
    key: tuple[str, ...] = ()
    group_by: str | None = None


@dataclass(frozen=True)
class Kpi:
    code: str
    name: dict[str, str]
    description: dict[str, str]
    formula: Formula
    unit: str
    direction: str
    cadence: tuple[str, ...]
    weight: float
    target: float | None = None
    target_per_days: int | None = None
    score_cap: float | None = None
    overrides: dict[str, JsonObject] = field(default_factory=dict)

    def target_for(self, city: str, *, days: int) -> Fraction | None:
        """The city's target for a period of ``days`` days (a per-month target scales with the period)."""
        raw = self.overrides.get(city, {}).get("target", self.target)
        if raw is None:
            return None
        target = exact(raw)
        if self.target_per_days:
            target = target * days / self.target_per_days
        return target

    def weight_for(self, city: str) -> float:
        return float(self.overrides.get(city, {}).get("weight", self.weight))


class KpiBook:
    """Every KPI of one book version, in the book's order."""

    def __init__(self, version: str, kpis: list[Kpi], title: dict[str, str] | None = None) -> None:
        self.version = version
        self.title = title or {}
        self._kpis = {kpi.code: kpi for kpi in kpis}

    @property
    def source(self) -> str:
        """What a KPIValue's ``source`` says: the book and its version."""
        return f"{BOOK_NAME} {self.version}"

    def __iter__(self) -> Any:
        return iter(self._kpis.values())

    def __len__(self) -> int:
        return len(self._kpis)

    def codes(self) -> list[str]:
        return list(self._kpis)

    def get(self, code: str) -> Kpi:
        try:
            return self._kpis[code]
        except KeyError:
            raise UnknownKpi(code, self.codes()) from None

    def reads(self) -> set[str]:
        """Every canonical type some KPI reads."""
        return {name for kpi in self for name in kpi.formula.reads}

    @classmethod
    def load(cls, path: Path = BOOK_FILE, overrides: Path | None = OVERRIDES_FILE) -> KpiBook:
        if path == BOOK_FILE and overrides == OVERRIDES_FILE:
            return _bundled()
        return cls.read(path, overrides)

    @classmethod
    def read(cls, path: Path, overrides: Path | None = None) -> KpiBook:
        """Read and validate a book (and optional overrides); :class:`BookError` names the first problem."""
        schema = _schema()
        document = _yaml(path)
        _validate(document, schema, str(path))
        types = set(SchemaRegistry.load().types())
        for index, item in enumerate(document["kpis"]):
            unknown = sorted(set(item["formula"]["reads"]) - types)
            if unknown:
                raise BookError(str(path), f"/kpis/{index}/formula/reads", f"unknown type(s) {', '.join(unknown)}")
        codes = [item["code"] for item in document["kpis"]]
        if len(codes) != len(set(codes)):
            raise BookError(str(path), "/kpis", "KPI codes must be unique")
        per_city: dict[str, dict[str, JsonObject]] = {}
        if overrides is not None:
            extra = _yaml(overrides)
            _validate(extra, {"$defs": schema["$defs"], "$ref": "#/$defs/Overrides"}, str(overrides))
            cities = CityRegistry.load()
            for city, entries in extra["cities"].items():
                if not cities.is_known(city):
                    raise BookError(str(overrides), f"/cities/{city}", f"unknown city code {city!r}")
                for code, values in entries.items():
                    if code not in codes:
                        raise BookError(str(overrides), f"/cities/{city}/{code}", f"unknown KPI {code!r}")
                    per_city.setdefault(code, {})[city] = values
        kpis = [_kpi(item, per_city.get(item["code"], {})) for item in document["kpis"]]
        return cls(document["version"], kpis, document.get("title"))


def _kpi(item: JsonObject, overrides: dict[str, JsonObject]) -> Kpi:
    formula = item["formula"]
    return Kpi(
        code=item["code"],
        name=item["name"],
        description=item["description"],
        formula=Formula(
            reads=tuple(formula["reads"]),
            time=tuple(formula["time"]),
            aggregate=formula["aggregate"],
            where=tuple(Condition(**c) for c in formula.get("where", ())),
            numerator_where=tuple(Condition(**c) for c in formula.get("numeratorWhere", ())),
            value=formula.get("value"),
            scale=formula.get("scale", 1),
            key=tuple(formula.get("key", ())),
            group_by=formula.get("groupBy"),
        ),
        unit=item["unit"],
        direction=item["direction"],
        cadence=tuple(item["cadence"]),
        weight=float(item["weight"]),
        target=item.get("target"),
        target_per_days=item.get("targetPerDays"),
        score_cap=item.get("scoreCap"),
        overrides=overrides,
    )


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BookError(str(path), "", f"cannot read: {exc}") from exc


def _validate(document: Any, schema: JsonObject, source: str) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        pointer = "".join(f"/{part}" for part in error.absolute_path)
        raise BookError(source, pointer, error.message)


@functools.cache
def _schema() -> JsonObject:
    loaded: JsonObject = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _bundled() -> KpiBook:
    return KpiBook.read(BOOK_FILE, OVERRIDES_FILE)
