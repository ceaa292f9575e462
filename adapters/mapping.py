"""Declarative mappings (YAML) from tabular legacy exports to canonical entities.

A mapping names the canonical type, the source's reading options, constants, lookups and one rule per target
field. Targets may be dotted (``address.district``, ``name.kk``). Each rule takes its value from exactly one of
``column`` (a list of header synonyms), ``point`` (``lon``/``lat`` columns), ``collect`` (several columns into
``[{code, value}]``), ``const``, ``template`` (``{field}`` placeholders over fields mapped before it) or
``first_of`` (the first present among fields mapped before it), then applies ``convert`` (+ ``args``) and
``lookup``. Targets starting with ``_`` are scratch values that templates may use but the entity does not get::

    type: ServiceRequest
    source: {encoding: cp1251, delimiter: ";"}
    constants: {city: astana, channel: phone}
    lookups:
      status: {closed: [Выполнено, Орындалды], open: [В работе, Жұмыста]}
    fields:
      serviceRequestId: {column: [Номер обращения, № обращения], required: true}
      dateRequested: {column: [Дата регистрации], convert: local_datetime, required: true}
      status: {column: [Статус], lookup: status, required: true}
      id: {template: "urn:ngsi-ld:ServiceRequest:{city}:{serviceRequestId}"}

    >>> mapping = Mapping.from_dict({"type": "ServiceRequest", "fields": {"serviceCode": {"column": ["Код"]}}})
    >>> mapping.compile(["код"]).apply(["roads.pothole"])
    {'type': 'ServiceRequest', 'serviceCode': 'roads.pothole'}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.conversions import CONVERTERS, normalise_key
from adapters.errors import ConversionError, MappingError
from adapters.records import Entity, Reason, Rejection

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")
_SOURCES = ("column", "point", "collect", "const", "template", "first_of")
_RULE_KEYS = {*_SOURCES, "convert", "args", "lookup", "required", "default"}
_MISSING: Any = object()


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


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

    def compile(self, headers: Sequence[Any]) -> CompiledMapping:
        """Resolve every column rule against the source's headers; MappingError when a required one is absent."""
        return CompiledMapping(self, [normalise_key(h) if h is not None else "" for h in headers])


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
    )


def _find_column(headers: list[str], synonyms: Any) -> int | None:
    names = [normalise_key(s) for s in (synonyms if isinstance(synonyms, list) else [synonyms])]
    for name in names:
        if name in headers:
            return headers.index(name)
    for name in names:  # a multi-row header "Заявитель / Телефон" also answers to "Телефон"
        tails = [i for i, h in enumerate(headers) if h.rsplit(" / ", 1)[-1] == name]
        if len(tails) == 1:
            return tails[0]
    return None


Step = Callable[[Sequence[Any], dict[str, Any]], Any]


class CompiledMapping:
    """A mapping bound to one source's columns: :meth:`apply` turns a row into an entity or a rejection."""

    def __init__(self, mapping: Mapping, headers: list[str]) -> None:
        self.mapping = mapping
        self.headers = headers
        self._steps: list[tuple[Rule, tuple[str, ...], Step]] = []
        for rule in mapping.rules:
            self._steps.append((rule, tuple(rule.target.split(".")), self._step(rule)))

    def _column(self, rule: Rule, synonyms: Any, *, optional: bool = False) -> int | None:
        index = _find_column(self.headers, synonyms)
        if index is None and rule.required and not optional:
            shown = ", ".join(repr(h) for h in self.headers if h) or "none"
            raise MappingError(
                f"{self.mapping.origin}: field {rule.target!r}: no column named any of {synonyms!r}; "
                f"the source has {shown}"
            )
        return index

    def _convert(self, rule: Rule) -> Callable[[Any], Any]:
        converter = CONVERTERS[rule.convert] if rule.convert else None
        args = dict(rule.args)
        if rule.convert in ("local_datetime", "epoch_datetime") and "zone" not in args:
            args["zone"] = self.mapping.timezone
        table = self.mapping.lookups.get(rule.lookup) if rule.lookup else None

        def convert(value: Any) -> Any:
            if converter is not None:
                value = converter(value, **args) if args else converter(value)
            if table is not None:
                key = normalise_key(value)
                if key not in table:
                    raise LookupError(f"{value!r} is not a known {rule.lookup} value")
                value = table[key]
            return value

        return convert

    def _step(self, rule: Rule) -> Step:
        convert = self._convert(rule)
        kind, spec = rule.kind, rule.spec
        if kind == "column":
            index = self._column(rule, spec)
            if index is None:
                return lambda row, done: _MISSING
            return lambda row, done: _MISSING if index >= len(row) or is_empty(row[index]) else convert(row[index])
        if kind == "point":
            lon_i, lat_i = self._column(rule, spec["lon"]), self._column(rule, spec["lat"])

            def point(row: Sequence[Any], done: dict[str, Any]) -> Any:
                if lon_i is None or lat_i is None or max(lon_i, lat_i) >= len(row):
                    return _MISSING
                lon, lat = row[lon_i], row[lat_i]
                if is_empty(lon) or is_empty(lat):
                    return _MISSING
                return {"type": "Point", "coordinates": [CONVERTERS["number"](lon), CONVERTERS["number"](lat)]}

            return point
        if kind == "collect":
            columns = [(code, self._column(rule, synonyms, optional=True)) for code, synonyms in spec.items()]

            def collect(row: Sequence[Any], done: dict[str, Any]) -> Any:
                items = [
                    {"code": code, "value": convert(row[i])}
                    for code, i in columns
                    if i is not None and i < len(row) and not is_empty(row[i])
                ]
                return items or _MISSING

            return collect
        if kind == "const":
            return lambda row, done: convert(spec)
        if kind == "template":
            template = str(spec)

            def fill(row: Sequence[Any], done: dict[str, Any]) -> Any:
                try:
                    return convert(_PLACEHOLDER.sub(lambda m: str(done[m.group(1)]), template))
                except KeyError as exc:
                    raise ConversionError(f"template needs {exc.args[0]!r}, which this record lacks") from None

            return fill
        names = list(spec)
        return lambda row, done: next((done[n] for n in names if n in done), _MISSING)

    def apply(self, row: Sequence[Any]) -> Entity | Rejection:
        """Map one row; every failing field becomes a reason, so one pass reports all of them."""
        done: dict[str, Any] = dict(self.mapping.constants)
        entity: Entity = {"type": self.mapping.type}
        reasons: list[Reason] = []
        for key, value in done.items():
            _put(entity, tuple(key.split(".")), value)
        for rule, path, step in self._steps:
            try:
                value = step(row, done)
            except ConversionError as exc:
                reasons.append(Reason("invalid-value", str(exc), rule.target))
                continue
            except LookupError as exc:
                reasons.append(Reason("unknown-value", str(exc.args[0]), rule.target))
                continue
            if value is _MISSING:
                if rule.default is not None:
                    value = rule.default
                elif rule.required:
                    reasons.append(Reason("missing-value", "no value in the record", rule.target))
                    continue
                else:
                    continue
            done[rule.target] = value
            if not rule.target.startswith("_"):  # "_name" fields are scratch values for templates
                _put(entity, path, value)
        return Rejection(reasons) if reasons else entity


def _put(entity: Entity, path: tuple[str, ...], value: Any) -> None:
    if len(path) == 1:
        entity[path[0]] = value
        return
    node = entity
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
