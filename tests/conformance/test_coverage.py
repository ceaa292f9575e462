"""Every requirement is tested, and every test names a requirement of the catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.checks import REGISTRY, planned_tests
from conformance.errors import CatalogueError
from conformance.requirements import Catalogue
from schemas import SchemaRegistry


def test_every_requirement_has_a_test() -> None:
    tested = {check.requirement for check in REGISTRY}
    untested = [requirement.id for requirement in Catalogue.load() if requirement.id not in tested]
    assert untested == []


def test_every_test_names_a_known_requirement() -> None:
    catalogue = Catalogue.load()
    unknown = [f"{check.requirement}/{check.name}" for check in REGISTRY if check.requirement not in catalogue]
    assert unknown == []


@pytest.mark.parametrize("profile", [version.collection for version in SchemaRegistry.load().latest()])
def test_every_profile_gets_generated_tests(profile: str) -> None:
    version = SchemaRegistry.load().get(profile)
    test_ids = [test_id for test_id, _, _ in planned_tests(version)]
    assert len(test_ids) == len(set(test_ids))
    filters = {test_id for test_id in test_ids if test_id.startswith("QM-LIST-005/")}
    assert filters == {f"QM-LIST-005/filter[{field}]" for field in version.filterable_fields}
    assert f"QM-DISC-002/operation[GET /{profile}/{{id}}]" in test_ids


def test_catalogue_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text("- id: QM-X-1\n  title: t\n  text: t\n  source: s\n  severity: MUST\n  applies: all\n  since: 1\n")
    with pytest.raises(CatalogueError, match="does not match"):
        Catalogue.load(path)
    path.write_text("- id: QM-X-001\n  title: t\n")
    with pytest.raises(CatalogueError, match="lacks the key 'text'"):
        Catalogue.load(path)
    with pytest.raises(CatalogueError, match="unknown requirement"):
        Catalogue.load().get("QM-NOPE-001")
