"""The requirement catalogue: every requirement of the open-API mandate, as data (``catalogue.yaml``).

A requirement has a stable ID, the text it comes from, a severity (MUST blocks a certificate, SHOULD does not),
the profiles it applies to and the suite version it appeared in. Tests name the requirement they verify; a
test naming an unknown ID is a catalogue error, and a requirement without a test fails the coverage test.

    >>> from schemas import SchemaRegistry
    >>> catalogue = Catalogue.load()
    >>> catalogue.get("QM-AUTH-007").severity
    'MUST'
    >>> profile = SchemaRegistry.load().get("service-requests")
    >>> "QM-AUTH-011" in {r.id for r in catalogue.for_profile(profile)}
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from conformance.errors import CatalogueError
from schemas import SchemaVersion

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
ID_PATTERN = re.compile(r"^QM-[A-Z]+-\d{3}$")
Severity = Literal["MUST", "SHOULD"]
APPLIES = ("all", "personal", "location")


@dataclass(frozen=True)
class Requirement:
    """One requirement of the mandate."""

    id: str
    title: str
    text: str
    source: str
    severity: Severity
    applies: str
    since: str

    def applies_to(self, profile: SchemaVersion) -> bool:
        """Whether the requirement is part of ``profile`` (e.g. redaction only where there are personal fields)."""
        if self.applies == "personal":
            return bool(profile.personal_fields)
        if self.applies == "location":
            return "location" in profile.document.get("properties", {})
        return True

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "source": self.source,
            "severity": self.severity,
            "applies": self.applies,
            "since": self.since,
        }


def _requirement(raw: Any, index: int) -> Requirement:
    if not isinstance(raw, dict):
        raise CatalogueError(f"catalogue entry {index} is not a mapping")
    try:
        requirement = Requirement(**{key: str(raw[key]) for key in Requirement.__dataclass_fields__})  # type: ignore[arg-type]
    except KeyError as exc:
        raise CatalogueError(f"catalogue entry {index} ({raw.get('id', '?')}) lacks the key {exc.args[0]!r}") from exc
    if not ID_PATTERN.match(requirement.id):
        raise CatalogueError(f"requirement id {requirement.id!r} does not match {ID_PATTERN.pattern}")
    if requirement.severity not in ("MUST", "SHOULD"):
        raise CatalogueError(f"{requirement.id}: severity must be MUST or SHOULD, not {requirement.severity!r}")
    if requirement.applies not in APPLIES:
        raise CatalogueError(f"{requirement.id}: applies must be one of {', '.join(APPLIES)}")
    return requirement


class Catalogue:
    """The loaded catalogue, in file order."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self._by_id: dict[str, Requirement] = {}
        for requirement in requirements:
            if requirement.id in self._by_id:
                raise CatalogueError(f"requirement {requirement.id} is defined twice")
            self._by_id[requirement.id] = requirement

    @classmethod
    def load(cls, path: Path = CATALOGUE_FILE) -> Catalogue:
        return _load(path)

    def get(self, requirement_id: str) -> Requirement:
        try:
            return self._by_id[requirement_id]
        except KeyError:
            raise CatalogueError(f"unknown requirement {requirement_id!r}") from None

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self._by_id

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def for_profile(self, profile: SchemaVersion) -> list[Requirement]:
        return [requirement for requirement in self if requirement.applies_to(profile)]


@cache
def _load(path: Path) -> Catalogue:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the requirement catalogue {path}: {exc}") from exc
    if not isinstance(raw, list):
        raise CatalogueError(f"{path} must hold a list of requirements")
    return Catalogue([_requirement(entry, index) for index, entry in enumerate(raw)])
