"""Invalid entities, generated from the profile's schema and taken from its documented ``invalid/`` examples.

Each case breaks one rule of the canonical schema (a missing required field, a wrong type, an enum or pattern
violation, an impossible or naive date-time, an unknown property, an id that disagrees with its city or type, a
conditional rule) and names the JSON pointer a module's 422 must point at. Cases are built from the type's first
example, so the list is known before a run starts and is the same on every run.

    >>> from schemas import SchemaRegistry
    >>> cases = invalid_cases(SchemaRegistry.load().get("service-requests"), "r1", ("astana", "karaganda"))
    >>> cases["enum-status"].pointer, cases["enum-status"].entity["status"]
    ('/status', 'qct-not-a-value')
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from conformance.seeding import examples, invalid_examples, make_entity
from schemas import SchemaRegistry, SchemaVersion

JsonObject = dict[str, Any]
SERVER_FIELDS = frozenset({"id", "type", "city", "dateModified"})


@dataclass(frozen=True)
class InvalidCase:
    name: str
    entity: JsonObject
    pointer: str
    reason: str


def _resolve(profile: SchemaVersion, spec: JsonObject) -> JsonObject:
    ref = spec.get("$ref", "")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {
            **profile.document["$defs"][ref.removeprefix("#/$defs/")],
            **{k: v for k, v in spec.items() if k != "$ref"},
        }
    return spec


def _top_level(profile: SchemaVersion) -> dict[str, JsonObject]:
    return {name: _resolve(profile, spec) for name, spec in profile.document.get("properties", {}).items()}


def _setter(name: str, value: Any) -> Callable[[JsonObject], None]:
    def change(entity: JsonObject) -> None:
        entity[name] = value

    return change


def _generated(profile: SchemaVersion, base: JsonObject, cities: tuple[str, str]) -> list[InvalidCase]:
    properties = _top_level(profile)
    cases: list[InvalidCase] = []

    def case(name: str, pointer: str, reason: str, change: Callable[[JsonObject], None]) -> None:
        entity = copy.deepcopy(base)
        change(entity)
        cases.append(InvalidCase(name, entity, pointer, reason))

    required = [name for name in profile.required if name not in SERVER_FIELDS]
    if required:
        case(f"missing-{required[0]}", f"/{required[0]}", "a required field is missing", lambda e: e.pop(required[0]))
    case("wrong-type", "/dateModified", "dateModified is a number", lambda e: e.update(dateModified=12345))
    case(
        "naive-date-time",
        "/dateModified",
        "dateModified has no UTC offset",
        lambda e: e.update(dateModified="2030-01-01T10:00:00"),
    )
    case(
        "impossible-date",
        "/dateModified",
        "30 February does not exist",
        lambda e: e.update(dateModified="2030-02-30T10:00:00+05:00"),
    )
    case(
        "unknown-property",
        "/qctUnknownField",
        "a property the schema does not define",
        lambda e: e.update(qctUnknownField="x"),
    )
    type_name = profile.type_name
    other_city_id = f"urn:ngsi-ld:{type_name}:{cities[1]}:{base['id'].rsplit(':', 1)[-1]}"
    case("id-city", "/id", "the id names another city than city", lambda e: e.update(id=other_city_id))
    other_type = "Device" if type_name != "Device" else "Incident"
    other_type_id = f"urn:ngsi-ld:{other_type}:{cities[0]}:{base['id'].rsplit(':', 1)[-1]}"
    case("id-type", "/id", "the id names another type", lambda e: e.update(id=other_type_id))
    for name, spec in properties.items():
        if name in SERVER_FIELDS or name not in base:
            continue
        kinds = {c.name.split("-", 1)[0] for c in cases}
        if "enum" in spec and "enum" not in kinds:
            case(f"enum-{name}", f"/{name}", f"{name} is not one of its values", _setter(name, "qct-not-a-value"))
        elif spec.get("type") == "string" and "pattern" in spec and "format" not in spec and "pattern" not in kinds:
            case(f"pattern-{name}", f"/{name}", f"{name} breaks its pattern", _setter(name, "!! not valid !!"))
    return cases


def _documented(profile: SchemaVersion, run_id: str, cities: tuple[str, str]) -> list[InvalidCase]:
    """The type's ``invalid/*.json`` entities, with the run's ids and cities (city disagreements kept)."""
    cases = []
    for stem, document in invalid_examples(profile).items():
        entity = copy.deepcopy(document["entity"])
        if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
            continue
        parts = entity["id"].split(":")
        mapping: dict[str, str] = {}
        for city in (parts[3] if len(parts) == 5 else None, entity.get("city")):
            if isinstance(city, str) and city not in mapping and len(mapping) < 2:
                mapping[city] = cities[len(mapping)]
        if len(parts) == 5:
            parts[3] = mapping.get(parts[3], parts[3])
            parts[4] = f"qct-{run_id}-invalid-{stem}"
            entity["id"] = ":".join(parts)
        if isinstance(entity.get("city"), str):
            entity["city"] = mapping.get(entity["city"], entity["city"])
        cases.append(
            InvalidCase(f"example-{stem}", entity, str(document["expect"]["pointer"]), str(document["reason"]))
        )
    return cases


def invalid_cases(profile: SchemaVersion, run_id: str, cities: tuple[str, str]) -> dict[str, InvalidCase]:
    """Every invalid case of ``profile`` that its schema really refuses at the pointer it names, by name."""
    return _cases(profile.collection, run_id, cities)


@lru_cache(maxsize=16)
def _cases(collection: str, run_id: str, cities: tuple[str, str]) -> dict[str, InvalidCase]:
    profile = SchemaRegistry.load().get(collection)
    bases = examples(profile)
    if not bases:
        return {}
    base = make_entity(profile, bases[0], run_id=run_id, name="invalid", city=cities[0], n=0)
    out = {}
    for item in [*_generated(profile, base, cities), *_documented(profile, run_id, cities)]:
        if profile.is_valid(item.entity):
            continue
        if item.pointer in {issue.pointer for issue in profile.explain(item.entity)}:
            out[item.name] = item
    return out


@cache
def case_names(profile_name: str) -> tuple[str, ...]:
    """The case names of a profile (for planning the tests; ids do not change which cases exist)."""
    return tuple(_cases(profile_name, "plan", ("astana", "karaganda")))
