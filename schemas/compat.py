"""Is schema version B a compatible successor of version A?

A compatible successor keeps every reader and writer of A working: it may add optional properties and widen
what it accepts (more enum values, looser bounds), but may not remove a property, make one required or no
longer required, or narrow a type, an enum, a bound, a pattern or a format. A major version bump is by
definition not a compatible successor.

    >>> a = {"x-version": "1.0.0", "type": "object", "properties": {"n": {"type": "integer"}}}
    >>> b = {"x-version": "1.1.0", "type": "object", "properties": {"n": {"type": "integer"}, "m": {}}}
    >>> check_compatibility(a, b).compatible
    True
    >>> c = {"x-version": "1.2.0", "type": "object", "properties": {"n": {"type": "string"}}}
    >>> [change.message for change in check_compatibility(b, c).breaking]
    ['type narrowed from integer to string', "property 'm' was removed"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.registry import version_key

JsonObject = dict[str, Any]

# bound keyword -> +1 when a larger value narrows (minimum), -1 when a smaller value narrows (maximum)
_BOUNDS = {
    "minimum": 1,
    "exclusiveMinimum": 1,
    "minLength": 1,
    "minItems": 1,
    "minProperties": 1,
    "maximum": -1,
    "exclusiveMaximum": -1,
    "maxLength": -1,
    "maxItems": -1,
    "maxProperties": -1,
}
_EXACT = ("pattern", "format", "multipleOf")


@dataclass(frozen=True)
class Change:
    pointer: str
    message: str
    breaking: bool


@dataclass(frozen=True)
class CompatReport:
    old_version: str
    new_version: str
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def compatible(self) -> bool:
        return not self.breaking


def check_compatibility(old: JsonObject, new: JsonObject) -> CompatReport:
    """Compare two self-contained schema documents (``SchemaVersion.document``)."""
    old_version, new_version = str(old.get("x-version", "0.0.0")), str(new.get("x-version", "0.0.0"))
    changes: list[Change] = []
    old_key, new_key = version_key(old_version), version_key(new_version)
    if new_key <= old_key:
        changes.append(Change("", f"version {new_version} does not come after {old_version}", True))
    elif new_key[0] != old_key[0]:
        changes.append(Change("", f"major version changed ({old_version} -> {new_version})", True))
    _Comparer(old, new, changes).compare(old, new, "")
    return CompatReport(old_version, new_version, changes)


class _Comparer:
    def __init__(self, old_root: JsonObject, new_root: JsonObject, changes: list[Change]) -> None:
        self.old_root, self.new_root, self.changes = old_root, new_root, changes
        self._seen: set[tuple[int, int]] = set()

    def note(self, pointer: str, message: str, *, breaking: bool) -> None:
        self.changes.append(Change(pointer, message, breaking))

    def deref(self, node: Any, root: JsonObject) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = root
            for token in node["$ref"][2:].split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **extra}
        return node

    def compare(self, old: Any, new: Any, pointer: str) -> None:
        old, new = self.deref(old, self.old_root), self.deref(new, self.new_root)
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new and new is not True:
                self.note(pointer, "schema replaced", breaking=True)
            return
        if (id(old), id(new)) in self._seen:
            return
        self._seen.add((id(old), id(new)))
        self._types(old, new, pointer)
        self._values(old, new, pointer)
        self._objects(old, new, pointer)
        for key in ("items", "additionalItems", "contains", "not"):
            if key in old and key in new:
                self.compare(old[key], new[key], f"{pointer}/{key}")
        for key in ("prefixItems", "allOf", "anyOf", "oneOf"):
            self._lists(old.get(key, []), new.get(key, []), f"{pointer}/{key}", key)
        for key in ("if", "then", "else"):
            if (key in old or key in new) and old.get(key) != new.get(key):
                self.note(f"{pointer}/{key}", f"conditional '{key}' changed", breaking=True)

    def _types(self, old: JsonObject, new: JsonObject, pointer: str) -> None:
        old_types, new_types = _type_set(old), _type_set(new)
        if old_types is not None and (new_types is None or not old_types <= new_types):
            if new_types is not None:
                self.note(pointer, f"type narrowed from {_show(old_types)} to {_show(new_types)}", breaking=True)
        elif old_types is None and new_types is not None:
            self.note(pointer, f"type restricted to {_show(new_types)}", breaking=True)
        elif old_types is not None and new_types is not None and new_types > old_types:
            self.note(pointer, f"type widened to {_show(new_types)}", breaking=False)

    def _values(self, old: JsonObject, new: JsonObject, pointer: str) -> None:
        if "enum" in new:
            old_values = old.get("enum")
            removed = [v for v in (old_values or []) if v not in new["enum"]]
            if old_values is None:
                self.note(pointer, "enum added", breaking=True)
            elif removed:
                self.note(pointer, f"enum values removed: {removed}", breaking=True)
            elif len(new["enum"]) > len(old_values):
                self.note(pointer, "enum values added", breaking=False)
        if "const" in new and old.get("const", object()) != new["const"]:
            self.note(pointer, "const added or changed", breaking=True)
        for key, direction in _BOUNDS.items():
            if key not in new:
                continue
            if key not in old:
                self.note(pointer, f"{key} {new[key]} added", breaking=True)
            elif (new[key] - old[key]) * direction > 0:
                self.note(pointer, f"{key} narrowed from {old[key]} to {new[key]}", breaking=True)
        for key in _EXACT:
            if key in new and old.get(key) != new[key]:
                self.note(pointer, f"{key} added or changed", breaking=True)

    def _objects(self, old: JsonObject, new: JsonObject, pointer: str) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name in old_props:
            if name not in new_props:
                self.note(f"{pointer}/properties/{name}", f"property {name!r} was removed", breaking=True)
            else:
                self.compare(old_props[name], new_props[name], f"{pointer}/properties/{name}")
        for name in new_props:
            if name not in old_props:
                self.note(
                    f"{pointer}/properties/{name}", f"optional property {name!r} added", breaking=name in new_required
                )
        for name in sorted(new_required - old_required):
            self.note(f"{pointer}/required", f"property {name!r} became required", breaking=True)
        for name in sorted(old_required - new_required):
            self.note(f"{pointer}/required", f"property {name!r} is no longer required", breaking=True)
        if old.get("additionalProperties", True) is not False and new.get("additionalProperties") is False:
            self.note(pointer, "additional properties no longer allowed", breaking=True)

    def _lists(self, old: list[Any], new: list[Any], pointer: str, key: str) -> None:
        for index, (a, b) in enumerate(zip(old, new, strict=False)):
            self.compare(a, b, f"{pointer}/{index}")
        if len(new) > len(old) and key in ("allOf", "prefixItems"):
            self.note(pointer, f"{key} gained {len(new) - len(old)} constraint(s)", breaking=True)
        if len(new) < len(old) and key in ("anyOf", "oneOf", "prefixItems"):
            self.note(pointer, f"{key} lost {len(old) - len(new)} alternative(s)", breaking=True)


def _type_set(node: JsonObject) -> frozenset[str] | None:
    value = node.get("type")
    if value is None:
        return None
    types = {value} if isinstance(value, str) else set(value)
    if "number" in types:
        types.add("integer")
    return frozenset(types)


def _show(types: frozenset[str]) -> str:
    shown = sorted(types - {"integer"} if "number" in types else types)
    return "|".join(shown)
