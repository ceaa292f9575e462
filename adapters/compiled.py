"""A mapping bound to one source's columns, generated as one Python function.

:meth:`Mapping.compile <adapters.mapping.Mapping.compile>` resolves header synonyms to column indexes, binds
converters and lookups, and then writes the mapping out as the source text of a single function, which it
compiles. A row then costs one call instead of a closure call per field; the fields that templates and
``first_of`` read are local variables, constants are written into templates, and the parent dict of two-level
targets (``address.district``) is looked up once per row (on the bench's mapping, 2.7 µs a row went to 2.4).
The text is kept in
:attr:`CompiledMapping.source` for whoever needs to see what a mapping does to a row::

    >>> from adapters.mapping import Mapping
    >>> doc = {"type": "ServiceRequest", "fields": {"status": {"column": ["Статус"], "required": True}}}
    >>> print(Mapping.from_dict(doc).compile(["Статус"]).source)
    def apply(row):
        entity = base.copy()
        reasons = []
        # 'status': column 0 'статус'
        try:
            v = row[0]
        except IndexError:
            v = None
        if v is None or (isinstance(v, str) and (not v or v.isspace())):
            reasons.append(missing_0)
        else:
            entity['status'] = v
        return Rejection(reasons) if reasons else entity
    <BLANKLINE>

Generated code is only ever built from the mapping's structure: every value that comes from the YAML file
(names, constants, defaults, converters) is bound by name in the function's namespace, and every target name
is written with :func:`repr`, so a mapping cannot inject code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from adapters.bounds import Bounds, ImplausibleValue, bounded
from adapters.conversions import CONVERTERS, normalise_key
from adapters.errors import ConversionError, MappingError
from adapters.records import Entity, Reason, Rejection

if TYPE_CHECKING:
    from adapters.mapping import Mapping, Rule

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")
MISSING: Any = object()
"""What a rule's source gives when the record has no value for it."""

Step = Callable[[Sequence[Any]], Any]
"""``step(row)``: a field's value from the row (``point``, ``collect``), or :data:`MISSING`."""
Convert = Callable[[Any], Any]
Memo = dict[str, Any]

_MEMO_LIMIT = 4096
"""Distinct cell texts one converter remembers before it starts afresh: bounds memory on high-cardinality columns."""
_MEMOISED = frozenset({"local_datetime", "local_date", "epoch_datetime", "boolean", "decimal", "number", "integer"})
"""Converters whose result depends on the cell alone, so that a repeated cell text can reuse it. Not
``pseudonym`` (no table of identifiers and their pseudonyms should sit in memory), nor ``phone_kz`` and
``local_id``, whose cells rarely repeat."""


class CompiledMapping:
    """A mapping bound to one source's columns: :meth:`apply` turns a row into an entity or a rejection."""

    def __init__(self, mapping: Mapping, headers: list[str], text_cells: bool = False) -> None:
        self.mapping = mapping
        self.headers = headers
        self.text_cells = text_cells
        constants = dict(mapping.constants)
        base: Entity = {"type": mapping.type}
        for key, value in constants.items():
            put(base, tuple(key.split(".")), value)
        referenced = sorted({name for rule in mapping.rules for name in references(rule)})
        targets = {rule.target for rule in mapping.rules}
        self._fields = {name: f"field_{i}" for i, name in enumerate(referenced)}
        """The local variable holding each field that a template or first_of reads (MISSING until it has a value)."""
        self._folded = {name: str(constants[name]) for name in referenced if name in constants and name not in targets}
        """Fields that templates read whose value is a constant that no rule changes: written into the template."""
        self._parents = {
            rule.target.split(".")[0]: f"parent_{i}"
            for i, rule in enumerate(mapping.rules)
            if rule.target.count(".") == 1
            and not rule.target.startswith("_")
            and rule.target.split(".")[0] not in targets
        }
        """The local variable holding each parent dict of two-level targets, once the entity has it; not for a
        parent that a rule sets as a whole, which could replace the dict the variable holds."""
        self._names: dict[str, Any] = {
            "Reason": Reason,
            "Rejection": Rejection,
            "ConversionError": ConversionError,
            "ImplausibleValue": ImplausibleValue,
            "MISSING": MISSING,
            "put": put,
            "constants": constants,
        }
        if all("." not in key for key in constants):
            self._names["base"] = base  # flat constants are copied with the entity in one step
            lines = ["def apply(row):", "    entity = base.copy()"]
        else:  # nested ones need fresh inner dicts for every entity
            self._names["mapping_type"] = mapping.type
            lines = ["def apply(row):", "    entity = {'type': mapping_type}"]
            lines += ["    for key, value in constants.items():", "        put(entity, tuple(key.split('.')), value)"]
        for name, local in self._fields.items():
            value = f"{self._bind('constant', len(self._names), constants[name])}" if name in constants else "MISSING"
            lines.append(f"    {local} = {value}  # {name!r}")
        lines += [f"    {local} = None  # {name!r}" for name, local in self._parents.items()]
        lines.append("    reasons = []")
        for n, rule in enumerate(mapping.rules):
            lines += _indent(self._field(n, rule, keep=rule.target in self._fields))
        lines.append("    return Rejection(reasons) if reasons else entity")
        self.source = "\n".join(lines) + "\n"
        exec(compile(self.source, f"<mapping {mapping.origin}>", "exec"), self._names)  # noqa: S102 - see module doc
        self.apply: Callable[[Sequence[Any]], Entity | Rejection] = self._names["apply"]
        """Map one row; every failing field becomes a reason, so one pass reports all of them."""
        fixed = "type" not in constants and all(rule.target != "type" for rule in mapping.rules)
        self.type: str | None = mapping.type if fixed else None
        """The ``type`` of every entity this mapping makes, when no rule or constant can change it."""

    def _bind(self, name: str, n: int, value: Any) -> str:
        """Put ``value`` in the generated function's namespace; the name to use for it there."""
        bound = f"{name}_{n}"
        self._names[bound] = value
        return bound

    def _column(self, rule: Rule, synonyms: Any, *, optional: bool = False) -> int | None:
        index = find_column(self.headers, synonyms)
        if index is None and rule.required and not optional:
            shown = ", ".join(repr(h) for h in self.headers if h) or "none"
            raise MappingError(
                f"{self.mapping.origin}: field {rule.target!r}: no column named any of {synonyms!r}; "
                f"the source has {shown}"
            )
        return index

    def _convert(self, rule: Rule) -> tuple[Convert | None, Memo | None]:
        """The rule's converter (arguments bound) followed by its lookup, None when the value is taken as is; and
        the results it remembers by cell text, when it does, for the generated code to look up first."""
        converter: Convert | None = None
        memo: Memo | None = None
        if rule.convert:
            args = dict(rule.args)
            if rule.convert in ("local_datetime", "epoch_datetime") and "zone" not in args:
                args["zone"] = self.mapping.timezone
            converter = CONVERTERS[rule.convert]
            if args:
                converter = functools.partial(converter, **args)
            if rule.low is not None or rule.high is not None:
                where = f"{self.mapping.origin}: field {rule.target!r}"
                bounds = Bounds.parse(rule.low, rule.high, self.mapping.timezone, where)
                converter = bounded(converter, bounds, self.mapping.timezone)
            if rule.convert in _MEMOISED:
                converter, memo = remembering(converter)
        if not rule.lookup:
            return converter, memo
        looked_up, lookup_memo = lookup(self.mapping.lookups[rule.lookup], rule.lookup, converter)
        return looked_up, lookup_memo if converter is None else None  # that memo is by converted value

    def _field(self, n: int, rule: Rule, *, keep: bool) -> list[str]:
        """The statements that map one field: take the value, convert it, and store it or say why not."""
        convert, memo = self._convert(rule)
        kind, spec, target = rule.kind, rule.spec, rule.target
        store = self._store(n, rule, keep=keep)
        empty = self._empty(n, rule, store)
        if kind == "column":
            index = self._column(rule, spec)
            if index is None:
                return [f"# {target!r}: no column named any of {spec!r}", *empty]
            blank = (
                "not v or v.isspace()"
                if self.text_cells
                else "v is None or (isinstance(v, str) and (not v or v.isspace()))"
            )
            return [
                f"# {target!r}: column {index} {self.headers[index]!r}",
                "try:",
                f"    v = row[{index}]",
                "except IndexError:",
                "    v = None",
                f"if {blank}:",
                *_indent(empty),
                "else:",
                *_indent(self._converted(n, rule, convert, store, memo)),
            ]
        if kind == "const":
            if convert is None:
                return [f"# {target!r}: constant", f"v = {self._bind('const', n, spec)}", *store]
            try:
                value = convert(spec)
            except Exception:  # it fails the same way for every record: let each record say so
                step: Step = _const(spec, convert)
            else:
                return [f"# {target!r}: constant", f"v = {self._bind('const', n, value)}", *store]
        elif kind == "template":
            return [f"# {target!r}: template {spec!r}", *self._template(n, rule, convert, store)]
        elif kind == "first_of":
            # as written: a name that is not text matches nothing
            sources = [self._fields[name] if isinstance(name, str) else "MISSING" for name in spec]
            lines = [
                f"# {target!r}: first of {self._bind('names', n, list(spec))}",
                f"v = {sources[0]}" if spec else "v = MISSING",
            ]
            for source in sources[1:]:
                lines += ["if v is MISSING:", f"    v = {source}"]
            return [*lines, "if v is MISSING:", *_indent(empty), "else:", *_indent(store)]
        elif kind == "point":
            step = _point(self._column(rule, spec["lon"]), self._column(rule, spec["lat"]))
        else:  # collect
            columns = [(code, self._column(rule, synonyms, optional=True)) for code, synonyms in spec.items()]
            step = _collect([(code, i) for code, i in columns if i is not None], convert or _same)
        return [
            f"# {target!r}: {kind}",
            "try:",
            f"    v = {self._bind('step', n, step)}(row)",
            *self._failures(n, rule),
            "else:",
            "    if v is MISSING:",
            *_indent(empty, 2),
            "    else:",
            *_indent(store, 2),
        ]

    def _converted(
        self, n: int, rule: Rule, convert: Convert | None, store: list[str], memo: Memo | None = None
    ) -> list[str]:
        """``v`` through the rule's converter, then stored; a conversion error becomes a reason. A converter
        that remembers its results has them looked up here first, which saves calling it for most cells."""
        if convert is None:
            return store
        converted = [
            "try:",
            f"    v = {self._bind('convert', n, convert)}(v)",
            *self._failures(n, rule),
            "else:",
            *_indent(store),
        ]
        if memo is None:
            return converted
        remembered = self._bind("memo", n, memo)
        return [
            f"w = {remembered}.get(v, MISSING)"
            if self.text_cells
            else f"w = {remembered}.get(v, MISSING) if v.__class__ is str else MISSING",
            "if w is MISSING:",
            *_indent(converted),
            "else:",
            "    v = w",
            *_indent(store),
        ]

    def _failures(self, n: int, rule: Rule) -> list[str]:
        """The ``except`` clauses that turn a value that failed to convert into a reason."""
        target = self._bind("target", n, rule.target)
        return [
            "except ImplausibleValue as exc:",
            f"    reasons.append(Reason('implausible-value', str(exc), {target}))",
            "except ConversionError as exc:",
            f"    reasons.append(Reason('invalid-value', str(exc), {target}))",
            "except LookupError as exc:",
            f"    reasons.append(Reason('unknown-value', str(exc.args[0]), {target}))",
        ]

    def _template(self, n: int, rule: Rule, convert: Convert | None, store: list[str]) -> list[str]:
        """``{field}`` placeholders filled from the fields mapped so far, by concatenation; constants that no rule
        changes are written in, and the text between fields is bound as one name. The first field the record
        lacks, from the left, is the one the reason names."""
        parts = PLACEHOLDER.split(str(rule.spec))
        texts: list[str] = [parts[0]]  # literal text and folded constants, between the fields read per record
        fields: list[str] = []
        lacks: list[str] = []
        for name, literal in zip(parts[1::2], parts[2::2], strict=True):
            if name in self._folded:
                texts[-1] += self._folded[name] + literal
                continue
            fields.append(self._fields[name])
            lacks.append(f"if {self._fields[name]} is MISSING:")
            reason = self._bind("lacks", len(self._names), Reason("invalid-value", _LACKS % (name,), rule.target))
            lacks.append(f"    reasons.append({reason})")
            texts.append(literal)
        pieces = [self._bind("text", len(self._names), text) if text else "" for text in texts]
        joined = [pieces[0]] if pieces[0] else []
        for local, text in zip(fields, pieces[1:], strict=True):
            joined.append(f"str({local})")
            if text:
                joined.append(text)
        checks = [("el" + line if i and line.startswith("if") else line) for i, line in enumerate(lacks)]
        value = f"v = {' + '.join(joined) or repr('')}"
        converted = self._converted(n, rule, convert, store)
        if not checks:
            return [value, *converted]
        return [*checks, "else:", f"    {value}", *_indent(converted)]

    def _empty(self, n: int, rule: Rule, store: list[str]) -> list[str]:
        """What a record without a value gets: the default, a ``missing-value`` reason if required, or nothing."""
        if rule.default is not None:
            return [f"v = {self._bind('default', n, rule.default)}", *store]
        if rule.required:
            return [f"reasons.append({self._bind('missing', n, Reason(*_MISSING_VALUE, rule.target))})"]
        return ["pass"]

    def _store(self, n: int, rule: Rule, *, keep: bool) -> list[str]:
        """Put ``v`` where the target names (``address.district`` one level down), and in its local variable if
        a template or first_of reads it."""
        target = rule.target
        lines = [f"{self._fields[target]} = v"] if keep else []
        path = tuple(target.split("."))
        if target.startswith("_"):  # "_name" fields are scratch values for templates
            pass
        elif len(path) == 1:
            lines.append(f"entity[{target!r}] = v")
        elif len(path) == 2 and path[0] in self._parents:  # the parent dict is looked up once per entity
            parent = self._parents[path[0]]
            lines += [f"if {parent} is None:", f"    {parent} = entity.setdefault({path[0]!r}, {{}})"]
            lines.append(f"{parent}[{path[1]!r}] = v")
        elif len(path) == 2:
            lines.append(f"entity.setdefault({path[0]!r}, {{}})[{path[1]!r}] = v")
        else:
            lines.append(f"put(entity, {self._bind('path', n, path)}, v)")
        return lines or ["pass"]


_MISSING_VALUE = ("missing-value", "no value in the record")
_LACKS = "template needs %r, which this record lacks"


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    return ["    " * levels + line for line in lines]


def references(rule: Rule) -> list[str]:
    """The fields a template or first_of rule reads from those mapped before it."""
    if rule.kind == "template":
        return PLACEHOLDER.findall(str(rule.spec))
    if rule.kind == "first_of":
        return [str(name) for name in rule.spec]
    return []


def find_column(headers: list[str], synonyms: Any) -> int | None:
    names = [normalise_key(s) for s in (synonyms if isinstance(synonyms, list) else [synonyms])]
    for name in names:
        if name in headers:
            return headers.index(name)
    for name in names:  # a multi-row header "Заявитель / Телефон" also answers to "Телефон"
        tails = [i for i, h in enumerate(headers) if h.rsplit(" / ", 1)[-1] == name]
        if len(tails) == 1:
            return tails[0]
    return None


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(value: Any) -> Any:
    return value


def _missing(row: Sequence[Any]) -> Any:
    return MISSING


def _point(lon_i: int | None, lat_i: int | None) -> Step:
    if lon_i is None or lat_i is None:
        return _missing
    last = max(lon_i, lat_i)
    to_number, memo = remembering(CONVERTERS["number"])

    def point(row: Sequence[Any]) -> Any:
        if last >= len(row):
            return MISSING
        lon, lat = row[lon_i], row[lat_i]
        if lon.__class__ is str and lat.__class__ is str and lon in memo and lat in memo:  # the common cell
            return {"type": "Point", "coordinates": [memo[lon], memo[lat]]}
        if is_empty(lon) or is_empty(lat):
            return MISSING
        return {"type": "Point", "coordinates": [to_number(lon), to_number(lat)]}

    return point


def _collect(columns: list[tuple[str, int]], convert: Convert) -> Step:
    def collect(row: Sequence[Any]) -> Any:
        items = [
            {"code": code, "value": convert(row[i])} for code, i in columns if i < len(row) and not is_empty(row[i])
        ]
        return items or MISSING

    return collect


def _const(spec: Any, convert: Convert) -> Step:
    """A constant whose conversion fails: every record says so, as it would if it came from a column."""
    return lambda row: convert(spec)


def remembering(converter: Convert) -> tuple[Convert, Memo]:
    """``converter`` remembering its results for cell texts (only ``str``: 1, 1.0 and True are equal keys),
    and what it remembers."""
    memo: Memo = {}

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

    return remembered, memo


def lookup(table: dict[str, Any], name: str, converter: Convert | None) -> tuple[Convert, Memo]:
    """Converter, then the lookup table by normalised key; and the canonical values of the converted cell
    texts already resolved, which it remembers."""
    memo: Memo = {}

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

    return lookup, memo


def put(entity: Entity, path: tuple[str, ...], value: Any) -> None:
    if len(path) == 1:
        entity[path[0]] = value
        return
    node = entity
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
