"""The two validation paths over one compiled schema.

* ``FastValidator`` answers valid / invalid and nothing else: jsonschema-rs (Rust), for the hot path.
* ``ExplainingValidator`` returns every error as data (:class:`Issue`), best match first: python-jsonschema.

Both see the same self-contained document and the same format checks, and both apply the rules that JSON
Schema cannot express (:func:`id_agreement`), so they never disagree about validity; a property-based test
holds them to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match, relevance

from schemas.identifiers import is_valid_bin

JsonObject = dict[str, Any]

# Custom formats, shared by both paths. date-time and date are built into both libraries; the schemas pin
# their shape with a pattern as well, so the libraries' edge-case differences (lower-case 't', leap
# seconds) never reach either format check.
CUSTOM_FORMATS: Mapping[str, Callable[[Any], bool]] = {"kz-bin": is_valid_bin}

_FORMAT_CHECKER = jsonschema.FormatChecker(formats=("date-time", "date"))
for _name, _check in CUSTOM_FORMATS.items():
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


class FastValidator:
    """Valid or not, as fast as possible (jsonschema-rs)."""

    def __init__(self, document: JsonObject) -> None:
        # Python format callbacks cost every call a fixed toll in jsonschema-rs, so pass only those used.
        used = {name: check for name, check in CUSTOM_FORMATS.items() if _uses_format(document, name)}
        self._validator = jsonschema_rs.Draft202012Validator(
            document, validate_formats=True, formats=used or None, pattern_options=jsonschema_rs.RegexOptions()
        )
        self._schema_valid = self._validator.is_valid

    def is_valid(self, entity: Any) -> bool:
        if not self._schema_valid(entity):
            return False
        if not isinstance(entity, dict):
            return True
        # The schema has matched, so id is urn:ngsi-ld:<this type>:<city segment>:<local id>; only the city
        # segment is left to compare, and a prefix test does it in one step.
        return bool(entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:{entity['city']}:"))


class ExplainingValidator:
    """Every error as an :class:`Issue`, best match first (python-jsonschema)."""

    def __init__(self, document: JsonObject) -> None:
        jsonschema.Draft202012Validator.check_schema(document)
        self._validator = jsonschema.Draft202012Validator(document, format_checker=_FORMAT_CHECKER)

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
