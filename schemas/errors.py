"""Errors raised by the schema registry.

SchemaError
 ├── SchemaLoadError      a schema file is missing, unreadable or not a valid JSON Schema
 ├── UnknownType          no canonical type (or collection) of that name
 ├── UnknownVersion       the type exists but not in that version
 ├── UnknownCity          no city in the registry (``schemas/cities.json``) has that code
 └── EntityInvalid        an entity failed validation; ``issues`` holds every error as data
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.validation import Issue


class SchemaError(Exception):
    """Base class of every error the ``schemas`` package raises."""


class SchemaLoadError(SchemaError):
    """A schema file could not be loaded; the message names the file and the cause."""


class UnknownType(SchemaError):
    """No canonical type or collection has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown type or collection: {name!r}")
        self.name = name


class UnknownVersion(SchemaError):
    """The type exists, but not in the requested version."""

    def __init__(self, type_name: str, version: str, known: list[str]) -> None:
        super().__init__(f"{type_name} has no version {version!r} (known: {', '.join(known)})")
        self.type_name = type_name
        self.version = version
        self.known = known


class EntityInvalid(SchemaError):
    """An entity does not conform to its canonical schema."""

    def __init__(self, issues: list[Issue]) -> None:
        first = issues[0] if issues else None
        summary = f"{first.pointer or '/'}: {first.message}" if first else "invalid entity"
        super().__init__(f"{len(issues)} validation error(s); first: {summary}")
        self.issues = issues


class UnknownCity(SchemaError):
    """No city in the registry has the given code."""

    def __init__(self, code: str, known: tuple[str, ...]) -> None:
        shown = ", ".join(known[:3]) + (", ..." if len(known) > 3 else "")
        super().__init__(f"unknown city code {code!r}; known: {shown}")
        self.code = code
