"""The data a run works on: seeded through the module's write operations, or a fixture the vendor loaded.

Seeds are built from the canonical examples of the profile's type, deterministically: the only thing that varies
between runs is the run id inside each entity's local id, so the same module gets the same verdict. They alternate
between two cities (so a module that ignores ``city`` or trusts a fixed city is caught) and carry their
``dateModified`` in three offsets (``Z``, ``+05:00``, ``+06:00``) chosen so that comparing the instants as text
gives another answer than comparing them as instants. The instants lie in a fixed window (2030-01-01) that no real
record shares, which lets list tests narrow a busy module's collection down to the seeded entities.

    >>> from schemas import SchemaRegistry
    >>> seeds = build_seeds(SchemaRegistry.load().get("service-requests"), "r1", ("astana", "karaganda"))
    >>> seeds[0]["id"], seeds[1]["city"], seeds[1]["dateModified"]
    ('urn:ngsi-ld:ServiceRequest:astana:qct-r1-0', 'karaganda', '2030-01-01T06:00:00+05:00')
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from conformance.errors import ConfigurationError
from schemas import SchemaVersion
from schemas.registry import MODELS_DIR

SEED_COUNT = 7
SEED_EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
OFFSETS = (UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=6)))
"""Seed n is written in OFFSETS[n % 3]: UTC, Astana's current +05:00 and its former +06:00."""
JsonObject = dict[str, Any]


def format_instant(instant: datetime, offset: timezone = UTC) -> str:
    """RFC 3339 with seconds, in ``offset`` (``Z`` for UTC).

    >>> format_instant(SEED_EPOCH, OFFSETS[2])
    '2030-01-01T06:00:00+06:00'
    """
    local = instant.astimezone(offset)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}"
    if offset is UTC:
        return text + "Z"
    return text + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def parse_instant(value: Any) -> datetime | None:
    """An aware datetime, or None for anything that is not an RFC 3339 date-time with an offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def examples(profile: SchemaVersion) -> list[JsonObject]:
    folder = MODELS_DIR / profile.type_name / "examples"
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def invalid_examples(profile: SchemaVersion) -> dict[str, JsonObject]:
    """The type's documented invalid entities (``invalid/*.json``) by file stem: ``{reason, expect, entity}``."""
    folder = MODELS_DIR / profile.type_name / "invalid"
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def local_id(entity_id: str) -> str:
    return entity_id.rsplit(":", 1)[-1]


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {key: _replace(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, old, new) for item in value]
    return new if value == old else value


def make_entity(
    profile: SchemaVersion, example: JsonObject, *, run_id: str, name: str, city: str, n: int
) -> JsonObject:
    """A copy of ``example`` with a run-specific id, the given city, and an instant (and offset) of its own."""
    entity: JsonObject = _replace(copy.deepcopy(example), local_id(example["id"]), f"qct-{run_id}-{name}")
    entity["id"] = f"urn:ngsi-ld:{profile.type_name}:{city}:qct-{run_id}-{name}"
    entity["city"] = city
    entity["dateModified"] = format_instant(SEED_EPOCH + timedelta(hours=n), OFFSETS[n % len(OFFSETS)])
    location = entity.get("location")
    if isinstance(location, dict) and location.get("type") == "Point":
        lon, lat = location["coordinates"][:2]
        location["coordinates"] = [round(lon + 0.01 * n, 6), round(lat + 0.01 * n, 6)]
    return entity


def build_seeds(
    profile: SchemaVersion, run_id: str, cities: tuple[str, str], count: int = SEED_COUNT
) -> list[JsonObject]:
    """``count`` valid entities of ``profile``, alternating between ``cities``, cycling through the examples."""
    bases = examples(profile)
    if not bases:
        raise ConfigurationError(f"the type {profile.type_name} has no examples to seed from")
    seeds = []
    for n in range(count):
        city = cities[n % 2]
        entity = make_entity(profile, bases[n % len(bases)], run_id=run_id, name=str(n), city=city, n=n)
        if profile.is_valid(entity):
            seeds.append(entity)
    _cover_filters(profile, seeds)
    if len(seeds) > 2 and "location" not in profile.required and "location" in seeds[-2]:
        # one seed without its optional location: bbox must leave it out (and not stumble over it)
        unplaced = {key: value for key, value in seeds[-2].items() if key != "location"}
        if profile.is_valid(unplaced):
            seeds[-2] = unplaced
    return seeds


FILLERS = ("qct-value", "QCT-1", "1.0.0", "qct")
"""Values tried, in order, for a filterable text field no example carries (the first the schema accepts)."""


def _cover_filters(profile: SchemaVersion, seeds: list[JsonObject]) -> None:
    """Give one seed a value for each filterable field that no example carries, so every filter is testable."""
    properties = profile.document.get("properties", {})
    for field in profile.filterable_fields:
        if not seeds or any(field in seed for seed in seeds):
            continue
        spec = properties.get(field, {})
        ref = spec.get("$ref", "")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            spec = profile.document["$defs"][ref.removeprefix("#/$defs/")]
        candidates = [value for value in spec.get("enum", []) if isinstance(value, str)] or list(FILLERS)
        target = seeds[1 % len(seeds)]
        for value in candidates:
            if profile.is_valid({**target, field: value}):
                target[field] = value
                break


def load_fixture(path: Path, profile: SchemaVersion) -> list[JsonObject]:
    """Entities of ``profile`` from an NDJSON file the vendor has loaded into a read-only module."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the fixture {path}: {exc}") from exc
    entities = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entity = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(entity, dict) or entity.get("type") != profile.type_name:
            raise ConfigurationError(f"{path}:{number}: not a {profile.type_name} entity")
        entities.append(entity)
    if len(entities) < 3:
        raise ConfigurationError(f"{path}: a fixture needs at least 3 entities, found {len(entities)}")
    return entities
