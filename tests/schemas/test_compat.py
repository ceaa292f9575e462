from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from schemas import SchemaRegistry, check_compatibility

REGISTRY = SchemaRegistry.load()


def _next(document: dict[str, Any], version: str = "1.2.0") -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["x-version"] = version
    return changed


def test_released_service_request_versions_are_compatible_successors() -> None:
    report = check_compatibility(
        REGISTRY.get("ServiceRequest", "1.0.0").document, REGISTRY.get("ServiceRequest", "1.1.0").document
    )
    assert report.compatible
    assert [c.message for c in report.changes] == ["optional property 'mediaUrl' added"]


def test_every_type_s_released_versions_form_a_compatible_chain() -> None:
    for name in REGISTRY.types():
        versions = REGISTRY.versions(name)
        for old, new in itertools.pairwise(versions):
            assert check_compatibility(old.document, new.document).compatible, (name, old.version, new.version)


def _current() -> dict[str, Any]:
    return REGISTRY.get("ServiceRequest").document


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["properties"].pop("channel"), "property 'channel' was removed"),
        (lambda d: d["required"].append("description"), "property 'description' became required"),
        (lambda d: d["required"].remove("channel"), "property 'channel' is no longer required"),
        (lambda d: d["properties"]["status"].update({"enum": ["open"]}), "enum values removed: ['closed']"),
        (lambda d: d["properties"]["firstContactResolved"].update({"type": "string"}), "type narrowed"),
        (lambda d: d["properties"]["agencyResponsible"].update({"maxLength": 10}), "maxLength narrowed"),
        (lambda d: d["properties"]["agencyResponsible"].update({"pattern": "^[A-Z]"}), "pattern added"),
        (
            lambda d: d["properties"].update({"priority": {"type": "integer"}}) or d["required"].append("priority"),
            "became required",
        ),
        (lambda d: d["$defs"]["Position"]["prefixItems"][0].update({"minimum": 50.0}), "minimum narrowed"),
    ],
)
def test_breaking_changes_are_caught(edit: Any, expected: str) -> None:
    new = _next(_current())
    edit(new)
    report = check_compatibility(_current(), new)
    assert not report.compatible
    assert any(expected in c.message for c in report.breaking), report.breaking


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["properties"].update({"priority": {"type": "integer"}}),
        lambda d: d["properties"]["channel"]["enum"].append("kiosk"),
        lambda d: d["properties"]["agencyResponsible"].update({"maxLength": 500}),
        lambda d: d["properties"]["firstContactResolved"].update({"type": ["boolean", "null"]}),
    ],
)
def test_widening_changes_are_compatible(edit: Any) -> None:
    new = _next(_current())
    edit(new)
    assert check_compatibility(_current(), new).compatible


def test_a_major_bump_or_an_older_version_is_not_a_compatible_successor() -> None:
    assert not check_compatibility(_current(), _next(_current(), "2.0.0")).compatible
    assert not check_compatibility(_current(), _next(_current(), "1.0.1")).compatible
