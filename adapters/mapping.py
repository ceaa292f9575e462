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

import functools
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
"""``step(row, done)``: a field's value from the row and the fields mapped before it, or ``_MISSING``."""
Convert = Callable[[Any], Any]
Field = Callable[[Sequence[Any], dict[str, Any], Entity, list[Reason]], None]
"""``field(row, done, entity, reasons)``: map one field of one row into ``entity``, or add why it cannot."""

_MEMO_LIMIT = 4096
"""Distinct cell texts one converter remembers before it starts afresh: bounds memory on high-cardinality columns."""
_MEMOISED = frozenset({"local_datetime", "local_date", "epoch_datetime", "boolean", "decimal", "number", "integer"})
"""Converters whose result depends on the cell alone, so that a repeated cell text can reuse it. Not
``pseudonym`` (no table of identifiers and their pseudonyms should sit in memory), nor ``phone_kz`` and
``local_id``, whose cells rarely repeat."""


class CompiledMapping:
    """A mapping bound to one source's columns: :meth:`apply` turns a row into an entity or a rejection.

    Binding does once what would otherwise be done for every row: header synonyms become column indexes,
    converters get their arguments bound, templates become format strings, constants are converted. Each field
    becomes one closure that reads, converts and stores its value, so :meth:`apply` only calls them in order.
    """

    def __init__(self, mapping: Mapping, headers: list[str]) -> None:
        self.mapping = mapping
        self.headers = headers
        self._constants = dict(mapping.constants)
        base: Entity = {"type": mapping.type}
        for key, value in self._constants.items():
            _put(base, tuple(key.split(".")), value)
        # Flat constants are copied with the entity in one step; nested ones need fresh inner dicts per entity.
        self._base = base if all("." not in key for key in self._constants) else None
        referenced = {name for rule in mapping.rules for name in _references(rule)}
        self._fields = [self._field(rule, keep=rule.target in referenced) for rule in mapping.rules]

    def _column(self, rule: Rule, synonyms: Any, *, optional: bool = False) -> int | None:
        index = _find_column(self.headers, synonyms)
        if index is None and rule.required and not optional:
            shown = ", ".join(repr(h) for h in self.headers if h) or "none"
            raise MappingError(
                f"{self.mapping.origin}: field {rule.target!r}: no column named any of {synonyms!r}; "
                f"the source has {shown}"
            )
        return index

    def _convert(self, rule: Rule) -> Convert | None:
        """The rule's converter (arguments bound) followed by its lookup; None when the value is taken as is."""
        converter: Convert | None = None
        if rule.convert:
            args = dict(rule.args)
            if rule.convert in ("local_datetime", "epoch_datetime") and "zone" not in args:
                args["zone"] = self.mapping.timezone
            converter = CONVERTERS[rule.convert]
            if args:
                converter = functools.partial(converter, **args)
            if rule.convert in _MEMOISED:
                converter = _memoised(converter)
        if not rule.lookup:
            return converter
        return _lookup(self.mapping.lookups[rule.lookup], rule.lookup, converter)

    def _field(self, rule: Rule, *, keep: bool) -> Field:
        convert = self._convert(rule)
        kind, spec = rule.kind, rule.spec
        if kind == "column":
            index = self._column(rule, spec)
            if index is not None:
                return _column_field(rule, index, convert, keep=keep)
            step: Step = _missing
        elif kind == "point":
            step = _point(self._column(rule, spec["lon"]), self._column(rule, spec["lat"]))
        elif kind == "collect":
            columns = [(code, self._column(rule, synonyms, optional=True)) for code, synonyms in spec.items()]
            step = _collect([(code, i) for code, i in columns if i is not None], convert or _same)
        elif kind == "const":
            step = _const(spec, convert)
        elif kind == "template":
            step = _template(str(spec), convert)
        else:
            step = _first_of(list(spec))
        return _step_field(rule, step, keep=keep)

    def apply(self, row: Sequence[Any]) -> Entity | Rejection:
        """Map one row; every failing field becomes a reason, so one pass reports all of them."""
        done = self._constants.copy()
        if self._base is not None:
            entity = self._base.copy()
        else:
            entity = {"type": self.mapping.type}
            for key, value in done.items():
                _put(entity, tuple(key.split(".")), value)
        reasons: list[Reason] = []
        for field_ in self._fields:
            field_(row, done, entity, reasons)
        return Rejection(reasons) if reasons else entity


def _references(rule: Rule) -> list[str]:
    """The fields a template or first_of rule reads from those mapped before it."""
    if rule.kind == "template":
        return _PLACEHOLDER.findall(str(rule.spec))
    if rule.kind == "first_of":
        return [str(name) for name in rule.spec]
    return []


def _destination(rule: Rule) -> tuple[str | None, str | None, tuple[str, ...] | None]:
    """Where a field goes in the entity: ``(name, None, None)`` at the top, ``(parent, name, None)`` one level
    down, ``(None, None, path)`` deeper, ``(None, None, None)`` for a scratch value kept only for templates."""
    target = rule.target
    if target.startswith("_"):  # "_name" fields are scratch values for templates
        return None, None, None
    path = tuple(target.split("."))
    if len(path) == 1:
        return target, None, None
    if len(path) == 2:
        return path[0], path[1], None
    return None, None, path


def _column_field(rule: Rule, index: int, convert: Convert | None, *, keep: bool) -> Field:
    """The hot case, in one closure: a cell, blank or absent -> default or missing, else converted and stored."""
    target, required, default = rule.target, rule.required, rule.default
    top, leaf, deep = _destination(rule)

    def column(row: Sequence[Any], done: dict[str, Any], entity: Entity, reasons: list[Reason]) -> None:
        try:
            value = row[index]
        except IndexError:
            value = None
        if value is None or (isinstance(value, str) and (not value or value.isspace())):
            if default is None:
                if required:
                    reasons.append(Reason("missing-value", "no value in the record", target))
                return
            value = default
        elif convert is not None:
            try:
                value = convert(value)
            except ConversionError as exc:
                reasons.append(Reason("invalid-value", str(exc), target))
                return
            except LookupError as exc:
                reasons.append(Reason("unknown-value", str(exc.args[0]), target))
                return
        if keep:
            done[target] = value
        if leaf is None:
            if top is not None:
                entity[top] = value
            elif deep is not None:
                _put(entity, deep, value)
        else:
            entity.setdefault(top, {})[leaf] = value  # type: ignore[arg-type]

    return column


def _step_field(rule: Rule, step: Step, *, keep: bool) -> Field:
    target, required, default = rule.target, rule.required, rule.default
    top, leaf, deep = _destination(rule)

    def field_(row: Sequence[Any], done: dict[str, Any], entity: Entity, reasons: list[Reason]) -> None:
        try:
            value = step(row, done)
        except ConversionError as exc:
            reasons.append(Reason("invalid-value", str(exc), target))
            return
        except LookupError as exc:
            reasons.append(Reason("unknown-value", str(exc.args[0]), target))
            return
        if value is _MISSING:
            if default is None:
                if required:
                    reasons.append(Reason("missing-value", "no value in the record", target))
                return
            value = default
        if keep:
            done[target] = value
        if leaf is None:
            if top is not None:
                entity[top] = value
            elif deep is not None:
                _put(entity, deep, value)
        else:
            entity.setdefault(top, {})[leaf] = value  # type: ignore[arg-type]

    return field_


def _same(value: Any) -> Any:
    return value


def _missing(row: Sequence[Any], done: dict[str, Any]) -> Any:
    return _MISSING


def _first_of(names: list[str]) -> Step:
    def first_of(row: Sequence[Any], done: dict[str, Any]) -> Any:
        for name in names:
            if name in done:
                return done[name]
        return _MISSING

    return first_of


def _point(lon_i: int | None, lat_i: int | None) -> Step:
    if lon_i is None or lat_i is None:
        return _missing
    last = max(lon_i, lat_i)
    to_number = _memoised(CONVERTERS["number"])

    def point(row: Sequence[Any], done: dict[str, Any]) -> Any:
        if last >= len(row):
            return _MISSING
        lon, lat = row[lon_i], row[lat_i]
        if is_empty(lon) or is_empty(lat):
            return _MISSING
        return {"type": "Point", "coordinates": [to_number(lon), to_number(lat)]}

    return point


def _collect(columns: list[tuple[str, int]], convert: Convert) -> Step:
    def collect(row: Sequence[Any], done: dict[str, Any]) -> Any:
        items = [
            {"code": code, "value": convert(row[i])} for code, i in columns if i < len(row) and not is_empty(row[i])
        ]
        return items or _MISSING

    return collect


def _const(spec: Any, convert: Convert | None) -> Step:
    if convert is None:
        return lambda row, done: spec
    try:
        value = convert(spec)
    except Exception:  # it fails the same way for every record: let each record say so, as before
        return lambda row, done: convert(spec)
    return lambda row, done: value


def _template(template: str, convert: Convert | None) -> Step:
    """``{field}`` placeholders filled from the fields mapped so far, by concatenation (no per-row parsing)."""
    parts = _PLACEHOLDER.split(template)
    head, pairs = parts[0], list(zip(parts[1::2], parts[2::2], strict=True))

    def fill(row: Sequence[Any], done: dict[str, Any]) -> Any:
        text = head
        try:
            for name, literal in pairs:
                text += str(done[name]) + literal
        except KeyError as exc:
            raise ConversionError(f"template needs {exc.args[0]!r}, which this record lacks") from None
        return text if convert is None else convert(text)

    return fill


def _memoised(converter: Convert) -> Convert:
    """``converter`` remembering its results for cell texts (only ``str``: 1, 1.0 and True are equal keys)."""
    memo: dict[str, Any] = {}

    def remembered(value: Any) -> Any:
        if value.__class__ is not str:
            return converter(value)
        try:
            return memo[value]
        except KeyError:
            pass
        result = converter(value)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[value] = result
        return result

    return remembered


def _lookup(table: dict[str, Any], name: str, converter: Convert | None) -> Convert:
    """Converter, then the lookup table by normalised key; cell texts already resolved are remembered."""
    memo: dict[str, Any] = {}

    def lookup(value: Any) -> Any:
        if converter is not None:
            value = converter(value)
        cacheable = value.__class__ is str
        if cacheable and value in memo:
            return memo[value]
        key = normalise_key(value)
        if key not in table:
            raise LookupError(f"{value!r} is not a known {name} value")
        canonical = table[key]
        if cacheable and len(memo) < _MEMO_LIMIT:
            memo[value] = canonical
        return canonical

    return lookup


def _put(entity: Entity, path: tuple[str, ...], value: Any) -> None:
    if len(path) == 1:
        entity[path[0]] = value
        return
    node = entity
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
