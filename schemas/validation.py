"""The validation paths over one compiled schema.

* ``FastValidator`` answers valid / invalid and nothing else: jsonschema-rs (Rust), for the hot path.
* ``ExplainingValidator`` returns every error as data (:class:`Issue`), best match first: python-jsonschema.

All see the same self-contained document, the same format checks and the same reading of ``pattern``
(:mod:`schemas.patterns`), and all apply the rule that JSON Schema cannot express (:func:`id_agreement`), so
they never disagree about validity; property-based tests hold them to that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.validators
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match, relevance

from schemas.identifiers import is_valid_bin
from schemas.patterns import UntranslatablePattern, compile_pattern

JsonObject = dict[str, Any]

# Custom formats, shared by every path. The schemas pin the shape of dates and date-times with a pattern as
# well, so differences between format implementations (lower-case 't', leap seconds) never reach a check.
CUSTOM_FORMATS: Mapping[str, Callable[[Any], bool]] = {"kz-bin": is_valid_bin}


def _rust_format(name: str) -> Callable[[Any], bool]:
    return jsonschema_rs.validator_for({"format": name}, validate_formats=True).is_valid


# The explaining path checks date and date-time with jsonschema-rs's own implementation, so that the two paths
# agree on every string by construction (python-jsonschema refuses year 0000, which RFC 3339 allows).
_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
for _name, _check in {**CUSTOM_FORMATS, "date": _rust_format("date"), "date-time": _rust_format("date-time")}.items():
    _FORMAT_CHECKER.checks(_name)(_check)


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation error, as data.

    ``pointer`` is a JSON pointer into the entity (for a missing or unexpected property, the property's own
    pointer), ``keyword`` the JSON Schema keyword that failed (or an ``x-`` rule of the registry),
    ``schema_path`` a JSON pointer into the schema.
    """

    pointer: str
    keyword: str
    message: str
    schema_path: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "keyword": self.keyword, "message": self.message}


def escape_pointer_token(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def to_pointer(parts: Iterable[object]) -> str:
    return "".join("/" + escape_pointer_token(p) for p in parts)


def id_agreement(entity: Mapping[str, Any]) -> Issue | None:
    """The ``<Type>`` and ``<city>`` inside ``urn:ngsi-ld:<Type>:<city>:<localId>`` must equal ``type`` and
    ``city``. JSON Schema cannot compare two fields, so the registry checks it on both paths."""
    entity_id, type_name, city = entity.get("id"), entity.get("type"), entity.get("city")
    if not (isinstance(entity_id, str) and isinstance(type_name, str) and isinstance(city, str)):
        return None  # the schema reports missing or mistyped fields
    parts = entity_id.split(":", 4)
    if len(parts) != 5 or parts[0] != "urn" or parts[1] != "ngsi-ld":
        return None  # the id pattern reports malformed URNs
    if parts[2] != type_name:
        return Issue("/id", "x-id-agreement", f"id names type {parts[2]!r} but the entity is a {type_name!r}")
    if parts[3] != city:
        return Issue("/id", "x-id-agreement", f"id names city {parts[3]!r} but the entity's city is {city!r}")
    return None


_ID_FIELDS = frozenset({"/id", "/type", "/city"})


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_ANNOTATIONS = frozenset({"description", "title", "examples", "default", "deprecated", "$comment"})
_DATA = frozenset({"const", "enum", "examples", "default"})


# The date and date-time shapes of schemas/models/_common/core.json, and the same shapes admitting only days
# that exist (30 days hath September...; 29 February in Gregorian leap years). A string matching the first
# passes jsonschema-rs's date / date-time format exactly when it matches the second; tests/schemas checks it
# for every day of every month of a 400-year cycle's edge years.
_DAY = "(0[1-9]|[12][0-9]|3[01])"
_SHAPE_DATE = f"^[0-9]{{4}}-(0[1-9]|1[0-2])-{_DAY}"
_SHAPE_TIME = "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_CALENDAR_DATE = (
    "^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
)
CALENDAR_PATTERNS = {
    ("date", _SHAPE_DATE + "$"): _CALENDAR_DATE + "$",
    ("date-time", _SHAPE_DATE + _SHAPE_TIME + "$"): _CALENDAR_DATE + _SHAPE_TIME + "$",
}


def for_rust(document: JsonObject) -> JsonObject:
    """``document`` rewritten into the form jsonschema-rs evaluates fastest, with the same meaning.

    Three rewrites (jsonschema-rs 0.61). ``bench/validate.py`` shows their joint effect (its "schema as
    written" line); the per-keyword costs quoted are from one-off timings of single-keyword schemas:

    * A whole-number float bound is written as an integer (``46.0`` -> ``46``). JSON Schema compares numbers
      by value, so nothing changes, but jsonschema-rs compares against a float bound by a slow general path:
      0.3-0.9 us per comparison against about 10 ns for an integer bound. The GeoJSON position bounds alone
      made every entity with a location cost one to four microseconds more.
    * Every ``$ref`` into ``#/$defs`` is replaced by its target (in an ``allOf`` when the reference has
      sibling keywords that validate); a followed reference costs jsonschema-rs some 30-50 ns at run time,
      and an entity follows a dozen. Recursive definitions keep their ``$ref``.
    * A ``date``/``date-time`` format next to the canonical shape pattern becomes one pattern that admits only
      real calendar days (:data:`CALENDAR_PATTERNS`): the regex runs anyway, and the format parse after it
      cost five per cent of the fast path.
    """
    defs = document.get("$defs", {})
    inlined = _inline(document, defs, ())
    return inlined if _refers(inlined) else {k: v for k, v in inlined.items() if k != "$defs"}


def _inline(node: Any, defs: JsonObject, expanding: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    out: JsonObject = {
        key: int(value)
        if key in _BOUNDS and type(value) is float and value.is_integer() and abs(value) < 2**53
        else value
        if key in _DATA  # instance data, not schemas: nothing in it is a keyword
        else _inline(value, defs, expanding)
        for key, value in node.items()
        if key != "$ref"
    }
    calendar = CALENDAR_PATTERNS.get((str(out.get("format")), str(out.get("pattern"))))
    if calendar is not None:
        out["pattern"] = calendar
        del out["format"]
    ref = node.get("$ref")
    if ref is None:
        return out
    name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else ""
    if not isinstance(ref, str) or not ref.startswith("#/$defs/") or name not in defs or name in expanding:
        return {**out, "$ref": ref}
    target = _inline(defs[name], defs, (*expanding, name))
    if all(key in _ANNOTATIONS or key.startswith("x-") for key in out):
        return target
    return {**out, "allOf": [target, *list(out.get("allOf", []))]}


def _refers(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_refers(v) for k, v in node.items() if k != "$defs")
    if isinstance(node, list):
        return any(_refers(item) for item in node)
    return False


class FastValidator:
    """Valid or not, as fast as possible: jsonschema-rs over the document as :func:`for_rust` rewrites it;
    ``as_written=True`` keeps the document as it is, for comparison."""

    def __init__(self, document: JsonObject, *, as_written: bool = False) -> None:
        # Python format callbacks cost every call a fixed toll in jsonschema-rs, so pass only those used.
        used = {name: check for name, check in CUSTOM_FORMATS.items() if _uses_format(document, name)}
        self._validator = jsonschema_rs.Draft202012Validator(
            document if as_written else for_rust(document),
            validate_formats=True,
            formats=used or None,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
        self.is_valid: Callable[[Any], bool] = _with_id_agreement(self._validator.is_valid, document)


def _with_id_agreement(schema_valid: Callable[[Any], bool], document: JsonObject) -> Callable[[Any], bool]:
    """``schema_valid`` followed by the rule of :func:`id_agreement`, with as little Python as possible: it
    runs for every entity on the hot path."""
    required = set(document.get("required", ()))
    if document.get("type") == "object" and {"id", "type", "city"} <= required:

        def entity_valid(entity: Any) -> bool:
            # The schema has matched, so entity is an object and its id is urn:ngsi-ld:<this type>:<city
            # segment>:<local id>; only the city segment is left to compare, and one prefix test does it.
            return schema_valid(entity) and entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:{entity['city']}:")

        return entity_valid

    def valid(instance: Any) -> bool:
        return schema_valid(instance) and (not isinstance(instance, dict) or id_agreement(instance) is None)

    return valid


class ExplainingValidator:
    """Every error as an :class:`Issue`, best match first (python-jsonschema)."""

    def __init__(self, document: JsonObject) -> None:
        jsonschema.Draft202012Validator.check_schema(document)
        self._validator = _Explaining(document, format_checker=_FORMAT_CHECKER)

    def explain(self, entity: Any) -> list[Issue]:
        errors = sorted(self._validator.iter_errors(entity), key=relevance, reverse=True)
        issues: list[Issue] = []
        for error in errors:
            issues.extend(_issues_from(error))
        if isinstance(entity, dict) and not any(i.pointer in _ID_FIELDS for i in issues):
            agreement = id_agreement(entity)
            if agreement is not None:
                issues.append(agreement)
        return _unique(issues)


def _pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, schema: JsonObject
) -> Iterable[ValidationError]:
    """``pattern`` as jsonschema-rs reads it (see schemas.patterns), not as Python's re.search would."""
    if not validator.is_type(instance, "string"):
        return
    try:
        search = compile_pattern(pattern).search
    except UntranslatablePattern:
        search = re.compile(pattern).search
    if search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Explaining = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _pattern}
)


def _uses_format(node: Any, name: str) -> bool:
    if isinstance(node, dict):
        return node.get("format") == name or any(_uses_format(v, name) for v in node.values())
    if isinstance(node, list):
        return any(_uses_format(v, name) for v in node)
    return False


def _issues_from(error: ValidationError) -> list[Issue]:
    """Translate one jsonschema error into issues that point at the offending property itself."""
    if error.context:  # anyOf / oneOf: report the alternative that came closest
        deepest = best_match(error.context)
        if deepest is not None:
            return _issues_from(deepest)
    path = list(error.absolute_path)
    schema_path = to_pointer(list(error.absolute_schema_path))
    keyword = str(error.validator)
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in _as_list(error.validator_value) if name not in instance]
        return [
            Issue(to_pointer([*path, name]), keyword, f"{name!r} is a required property", schema_path)
            for name in missing
        ]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = [name for name in instance if name not in known]
        return [
            Issue(to_pointer([*path, name]), keyword, f"unexpected property {name!r}", schema_path) for name in extra
        ]
    return [Issue(to_pointer(path), keyword, error.message, schema_path)]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        key = (issue.pointer, issue.keyword, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
