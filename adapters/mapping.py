"""Declarative mappings (YAML) from tabular legacy exports to canonical entities.

A mapping names the canonical type, the source's reading options, constants, lookups and one rule per target
field. Targets may be dotted (``address.district``, ``name.kk``). Each rule takes its value from exactly one of
``column`` (a list of header synonyms), ``point`` (``lon``/``lat`` columns), ``collect`` (several columns into
``[{code, value}]``), ``const``, ``template`` (``{field}`` placeholders over fields mapped before it) or
``first_of`` (the first present among fields mapped before it), then applies ``convert`` (+ ``args``) and
``lookup``; ``min`` and ``max`` bound the converted value (:mod:`adapters.bounds`), and ``args: {formats:
[...]}`` names the date forms a ``local_datetime`` column may hold. Targets starting with ``_`` are scratch
values that templates may use but the entity does not get::

    type: ServiceRequest
    source: {encoding: cp1251, delimiter: ";"}
    constants: {city: astana, channel: phone}
    lookups:
      status: {closed: [Выполнено, Орындалды], open: [В работе, Жұмыста]}
    fields:
      serviceRequestId: {column: [Номер обращения, № обращения], required: true}
      dateRequested: {column: [Дата регистрации], convert: local_datetime, required: true, max: now+1d}
      status: {column: [Статус], lookup: status, required: true}
      id: {template: "urn:ngsi-ld:ServiceRequest:{city}:{serviceRequestId}"}

    >>> mapping = Mapping.from_dict({"type": "ServiceRequest", "fields": {"serviceCode": {"column": ["Код"]}}})
    >>> mapping.compile(["код"]).apply(["roads.pothole"])
    {'type': 'ServiceRequest', 'serviceCode': 'roads.pothole'}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.bounds import Bounds
from adapters.compiled import CompiledMapping
from adapters.conversions import CONVERTERS, normalise_key
from adapters.errors import MappingError

_SOURCES = ("column", "point", "collect", "const", "template", "first_of")
_RULE_KEYS = {*_SOURCES, "convert", "args", "lookup", "required", "default", "min", "max"}


@dataclass(frozen=True)
class Rule:
    """How one target field gets its value."""

    target: str
    kind: str
    spec: Any
    convert: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    lookup: str | None = None
    required: bool = False
    default: Any = None
    low: Any = None
    """``min``: the lowest plausible value (see :mod:`adapters.bounds`)."""
    high: Any = None
    """``max``: the highest plausible value."""


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file; :meth:`compile` binds it to a source's headers."""

    type: str
    rules: tuple[Rule, ...]
    source: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    timezone: str = "Asia/Almaty"
    origin: str = "<mapping>"

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read a YAML mapping; raises MappingError naming the file and the offending key."""
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(document, origin=str(path))

    @classmethod
    def from_dict(cls, document: Any, origin: str = "<mapping>") -> Mapping:
        if not isinstance(document, dict):
            raise MappingError(f"{origin}: a mapping is a YAML object")
        type_name = document.get("type")
        if not isinstance(type_name, str):
            raise MappingError(f"{origin}: 'type' (the canonical type, e.g. ServiceRequest) is required")
        fields_doc = document.get("fields")
        if not isinstance(fields_doc, dict) or not fields_doc:
            raise MappingError(f"{origin}: 'fields' must map target fields to rules")
        lookups: dict[str, dict[str, Any]] = {}
        for name, table in (document.get("lookups") or {}).items():
            if not isinstance(table, dict):
                raise MappingError(f"{origin}: lookup {name!r} must map canonical values to lists of words")
            lookups[name] = {}
            for canonical, words in table.items():
                for word in words if isinstance(words, list) else [words]:
                    lookups[name][normalise_key(word)] = canonical
        rules = tuple(_parse_rule(origin, target, spec, lookups) for target, spec in fields_doc.items())
        zone = str(document.get("timezone", "Asia/Almaty"))
        for rule in rules:
            if rule.low is not None or rule.high is not None:
                if not rule.convert:
                    raise MappingError(f"{origin}: field {rule.target!r}: min/max need a convert (a number or a date)")
                Bounds.parse(rule.low, rule.high, zone, f"{origin}: field {rule.target!r}")  # refused here, early
        return cls(
            type=type_name,
            rules=rules,
            source=dict(document.get("source") or {}),
            constants=dict(document.get("constants") or {}),
            lookups=lookups,
            timezone=str(document.get("timezone", "Asia/Almaty")),
            origin=origin,
        )

    def column_names(self) -> list[str]:
        """Every column name the rules mention, for sources whose records carry their own names (XML, JSON)."""
        names: list[str] = []
        for rule in self.rules:
            if rule.kind == "column":
                groups = [rule.spec]
            elif rule.kind in ("point", "collect"):
                groups = list(rule.spec.values())
            else:
                continue
            for group in groups:
                for name in group if isinstance(group, list) else [group]:
                    if name is not None and name not in names:
                        names.append(str(name))
        return names

    def compile(self, headers: Sequence[Any], *, text_cells: bool = False) -> CompiledMapping:
        """Resolve every column rule against the source's headers; MappingError when a required one is absent.
        With ``text_cells``, every cell of every row will be a ``str``, which saves a type test per cell."""
        return CompiledMapping(self, [normalise_key(h) if h is not None else "" for h in headers], text_cells)


def _parse_rule(origin: str, target: str, spec: Any, lookups: dict[str, dict[str, Any]]) -> Rule:
    where = f"{origin}: field {target!r}"
    if isinstance(spec, list | str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a rule is an object or a list of column names")
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_RULE_KEYS)})")
    kinds = [k for k in _SOURCES if k in spec]
    if len(kinds) != 1:
        raise MappingError(f"{where}: give exactly one of {', '.join(_SOURCES)}")
    kind = kinds[0]
    convert = spec.get("convert")
    if convert is not None and convert not in CONVERTERS:
        raise MappingError(f"{where}: unknown converter {convert!r} (known: {', '.join(sorted(CONVERTERS))})")
    lookup = spec.get("lookup")
    if lookup is not None and lookup not in lookups:
        raise MappingError(f"{where}: unknown lookup {lookup!r}")
    value = spec[kind]
    if kind == "column" and isinstance(value, str):
        value = [value]
    if kind == "point" and not (isinstance(value, dict) and {"lon", "lat"} <= set(value)):
        raise MappingError(f"{where}: 'point' needs 'lon' and 'lat' column lists")
    if kind == "collect" and not isinstance(value, dict):
        raise MappingError(f"{where}: 'collect' maps codes to column lists")
    return Rule(
        target=target,
        kind=kind,
        spec=value,
        convert=convert,
        args=dict(spec.get("args") or {}),
        lookup=lookup,
        required=bool(spec.get("required", False)),
        default=spec.get("default"),
        low=spec.get("min"),
        high=spec.get("max"),
    )
