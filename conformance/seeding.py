"""The data a run works on: seeded through the module's write operations, or a fixture the vendor loaded.

Seeds are built from the canonical examples of the profile's type, deterministically: the only thing that varies
between runs is the run id inside each entity's local id, so the same module gets the same verdict. Their
``dateModified`` values lie in a fixed window (2030-01-01) that no real record shares, which lets list tests
narrow a busy module's collection down to the seeded entities with ``updatedSince``.

    >>> from schemas import SchemaRegistry
    >>> seeds = build_seeds(SchemaRegistry.load().get("service-requests"), "r1", "astana")
    >>> seeds[0]["id"], seeds[0]["city"]
    ('urn:ngsi-ld:ServiceRequest:astana:qct-r1-0', 'astana')
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conformance.errors import ConfigurationError
from schemas import SchemaVersion
from schemas.registry import MODELS_DIR

SEED_COUNT = 7
SEED_EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
JsonObject = dict[str, Any]


def format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def examples(profile: SchemaVersion) -> list[JsonObject]:
    folder = MODELS_DIR / profile.type_name / "examples"
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


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
    """A copy of ``example`` with a run-specific id, the given city, and an instant of its own."""
    entity: JsonObject = _replace(copy.deepcopy(example), local_id(example["id"]), f"qct-{run_id}-{name}")
    entity["id"] = f"urn:ngsi-ld:{profile.type_name}:{city}:qct-{run_id}-{name}"
    entity["city"] = city
    entity["dateModified"] = format_instant(SEED_EPOCH + timedelta(hours=n))
    location = entity.get("location")
    if isinstance(location, dict) and location.get("type") == "Point":
        lon, lat = location["coordinates"][:2]
        location["coordinates"] = [round(lon + 0.01 * n, 6), round(lat + 0.01 * n, 6)]
    return entity


def build_seeds(profile: SchemaVersion, run_id: str, city: str, count: int = SEED_COUNT) -> list[JsonObject]:
    """``count`` valid entities of ``profile`` in ``city``, cycling through the type's examples."""
    bases = examples(profile)
    if not bases:
        raise ConfigurationError(f"the type {profile.type_name} has no examples to seed from")
    seeds = []
    for n in range(count):
        entity = make_entity(profile, bases[n % len(bases)], run_id=run_id, name=str(n), city=city, n=n)
        if profile.is_valid(entity):
            seeds.append(entity)
    return seeds


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
