"""The schema registry: every canonical type in every released version, ready to validate.

    >>> registry = SchemaRegistry.load()
    >>> registry.get("service-requests").type_name
    'ServiceRequest'
    >>> registry.is_valid({"type": "ServiceRequest"})
    False

Layout on disk (``schemas/models``)::

    _common/<name>.json          shared definitions, referred to by absolute URI
    <Type>/schema.json           the current version (its ``x-version`` says which)
    <Type>/versions/<semver>.json  every released version, frozen; schema.json equals the newest
    <Type>/examples/*.json       valid entities
    <Type>/invalid/*.json        {"reason", "expect": {"pointer", "keyword"}, "entity"}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from schemas.bundle import inline_refs
from schemas.errors import EntityInvalid, SchemaLoadError, UnknownType, UnknownVersion
from schemas.validation import ExplainingValidator, FastValidator, Issue

JsonObject = dict[str, Any]

MODELS_DIR = Path(__file__).parent / "models"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def version_key(version: str) -> tuple[int, int, int]:
    match = SEMVER.match(version)
    if not match:
        raise SchemaLoadError(f"not a semantic version: {version!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SchemaLoadError(f"{path}: {exc}") from exc


def collection_name(type_name: str) -> str:
    """Kebab-case plural of a type name: ``ServiceRequest`` -> ``service-requests``, ``KPIValue`` -> ``kpi-values``.

    Names that already end in a plural word (``AirQualityObserved``) keep it: the collection name is
    declared in each schema's ``x-collection`` and this is only the default.
    """
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", type_name).lower()
    if kebab.endswith("observed"):
        return kebab
    if kebab.endswith("y") and not kebab.endswith(("ay", "ey", "oy", "uy")):
        return kebab[:-1] + "ies"
    return kebab + ("es" if kebab.endswith(("s", "x", "ch", "sh")) else "s")


@dataclass(frozen=True)
class SchemaVersion:
    """One released (or working) version of a canonical type."""

    type_name: str
    version: str
    collection: str
    source: JsonObject = field(repr=False)
    """The schema as written, with references to the shared definitions."""
    document: JsonObject = field(repr=False)
    """Self-contained: shared definitions copied into ``$defs``."""
    released: bool = True

    @property
    def schema_id(self) -> str:
        return str(self.source["$id"])

    @property
    def title(self) -> str:
        return str(self.source.get("title", self.type_name))

    @property
    def description(self) -> str:
        return str(self.source.get("description", ""))

    @cached_property
    def personal_fields(self) -> frozenset[str]:
        """Top-level properties marked ``"x-personal": true``."""
        properties = self.source.get("properties", {})
        return frozenset(name for name, spec in properties.items() if spec.get("x-personal") is True)

    @cached_property
    def required(self) -> tuple[str, ...]:
        return tuple(self.source.get("required", ()))

    @cached_property
    def filterable_fields(self) -> tuple[str, ...]:
        """Top-level enum or short string properties, which the exchange API filters by equality."""
        out = []
        for name, spec in self.document.get("properties", {}).items():
            if name in ("id", "type") or spec.get("x-personal"):
                continue
            target = spec
            ref = spec.get("$ref", "")
            if ref.startswith("#/$defs/"):
                target = self.document["$defs"][ref.removeprefix("#/$defs/")]
            short_string = (
                target.get("type") == "string" and "format" not in target and target.get("maxLength", 0) <= 300
            )
            if "enum" in target or short_string:
                out.append(name)
        return tuple(out)

    @cached_property
    def fast(self) -> FastValidator:
        return FastValidator(self.document)

    @cached_property
    def explaining(self) -> ExplainingValidator:
        return ExplainingValidator(self.document)

    def is_valid(self, entity: Any) -> bool:
        return self.fast.is_valid(entity)

    def explain(self, entity: Any) -> list[Issue]:
        return self.explaining.explain(entity)

    def redact(self, entity: JsonObject) -> JsonObject:
        """A copy of ``entity`` without its personal fields."""
        return {key: value for key, value in entity.items() if key not in self.personal_fields}


class SchemaRegistry:
    """All canonical types, every version side by side."""

    def __init__(self, versions: dict[str, dict[str, SchemaVersion]], shared: dict[str, JsonObject]) -> None:
        self._versions = versions
        self._shared = shared
        self._latest = {
            name: max(by_v.values(), key=lambda v: version_key(v.version)) for name, by_v in versions.items()
        }
        self._by_collection = {v.collection: name for name, v in self._latest.items()}

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path = MODELS_DIR) -> SchemaRegistry:
        """Load every type below ``root``. Raises SchemaLoadError naming the first bad file."""
        shared = load_shared(root / "_common")
        versions: dict[str, dict[str, SchemaVersion]] = {}
        for type_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
            by_version: dict[str, SchemaVersion] = {}
            for path in sorted((type_dir / "versions").glob("*.json")):
                entry = build_version(type_dir.name, read_json(path), shared, released=True, path=path)
                if entry.version != path.stem:
                    raise SchemaLoadError(f"{path}: x-version {entry.version!r} differs from the file name")
                by_version[entry.version] = entry
            current_path = type_dir / "schema.json"
            if current_path.exists():
                current = build_version(
                    type_dir.name, read_json(current_path), shared, released=False, path=current_path
                )
                frozen = by_version.get(current.version)
                if frozen is None:
                    by_version[current.version] = current
                elif frozen.source != current.source:
                    raise SchemaLoadError(
                        f"{current_path}: version {current.version} is released and may not change; "
                        "bump x-version and $id"
                    )
            if not by_version:
                raise SchemaLoadError(f"{type_dir}: no schema.json and no released versions")
            versions[type_dir.name] = by_version
        return cls(versions, shared)

    # -- lookup ---------------------------------------------------------------------------------

    def types(self) -> list[str]:
        return sorted(self._versions)

    def latest(self) -> list[SchemaVersion]:
        return [self._latest[name] for name in self.types()]

    def versions(self, type_name: str) -> list[SchemaVersion]:
        name = self._resolve(type_name)
        return sorted(self._versions[name].values(), key=lambda v: version_key(v.version))

    def get(self, name: str, version: str | None = None) -> SchemaVersion:
        """A type by type name (``ServiceRequest``) or collection (``service-requests``); latest by default."""
        type_name = self._resolve(name)
        if version is None:
            return self._latest[type_name]
        try:
            return self._versions[type_name][version]
        except KeyError:
            raise UnknownVersion(type_name, version, [v.version for v in self.versions(type_name)]) from None

    def has(self, name: str) -> bool:
        return name in self._versions or name in self._by_collection

    @property
    def shared(self) -> dict[str, JsonObject]:
        """Shared definitions keyed by their absolute reference URI."""
        return self._shared

    def _resolve(self, name: str) -> str:
        if name in self._versions:
            return name
        if name in self._by_collection:
            return self._by_collection[name]
        raise UnknownType(name)

    # -- validation -----------------------------------------------------------------------------

    def is_valid(self, entity: Any) -> bool:
        """Fast path: the latest version of the entity's own ``type``."""
        try:
            check = self._fast_checks[entity["type"]]
        except (KeyError, TypeError, IndexError):
            return False  # not an object, no type, or an unknown type
        return check(entity)

    @cached_property
    def _fast_checks(self) -> dict[Any, Callable[[Any], bool]]:
        """Type name -> the bound fast check of its latest version: one dict look-up on the hot path."""
        return {name: version.fast.is_valid for name, version in self._latest.items()}

    def explain(self, entity: Any) -> list[Issue]:
        """Explaining path: every error, best match first; empty when valid."""
        if not isinstance(entity, dict):
            return [Issue("", "type", f"an entity is a JSON object, not {type(entity).__name__}")]
        type_name = entity.get("type")
        if not isinstance(type_name, str):
            return [Issue("/type", "required", "'type' is a required property naming a canonical type")]
        if type_name not in self._versions:
            known = ", ".join(self.types())
            return [Issue("/type", "x-known-type", f"unknown type {type_name!r} (known: {known})")]
        return self._latest[type_name].explain(entity)

    def validate(self, entity: Any) -> SchemaVersion:
        """Return the schema the entity conforms to, or raise EntityInvalid with every issue."""
        target = self._target(entity)
        if target is not None and target.is_valid(entity):
            return target
        raise EntityInvalid(self.explain(entity))

    def _target(self, entity: Any) -> SchemaVersion | None:
        if not isinstance(entity, dict):
            return None
        type_name = entity.get("type")
        return self._latest.get(type_name) if isinstance(type_name, str) else None

    def __iter__(self) -> Iterator[SchemaVersion]:
        return iter(self.latest())


def load_shared(common_dir: Path) -> dict[str, JsonObject]:
    """Every ``$defs`` entry of the shared files, keyed by ``<$id>#/$defs/<name>``; names must be unique."""
    shared: dict[str, JsonObject] = {}
    names: dict[str, str] = {}
    for path in sorted(common_dir.glob("*.json")):
        document = read_json(path)
        base = document.get("$id")
        if not isinstance(base, str):
            raise SchemaLoadError(f"{path}: shared definitions need an $id")
        for name, definition in document.get("$defs", {}).items():
            if name in names:
                raise SchemaLoadError(f"{path}: definition {name!r} already defined in {names[name]}")
            names[name] = path.name
            shared[f"{base}#/$defs/{name}"] = definition
    return shared


def build_version(
    type_name: str, source: Any, shared: dict[str, JsonObject], *, released: bool, path: Path
) -> SchemaVersion:
    if not isinstance(source, dict):
        raise SchemaLoadError(f"{path}: a schema is a JSON object")
    for key in ("$id", "x-version", "x-collection", "title"):
        if key not in source:
            raise SchemaLoadError(f"{path}: missing {key!r}")
    if source["title"] != type_name:
        raise SchemaLoadError(f"{path}: title {source['title']!r} differs from the folder {type_name!r}")
    version = str(source["x-version"])
    version_key(version)
    if f"/{version}/" not in str(source["$id"]):
        raise SchemaLoadError(f"{path}: $id {source['$id']!r} does not carry version {version}")
    document, defs = inline_refs(source, shared, "#/$defs/")
    if defs:
        document["$defs"] = {**document.get("$defs", {}), **defs}
    return SchemaVersion(type_name, version, str(source["x-collection"]), source, document, released)
