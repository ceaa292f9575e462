"""The real suite against the reference module, a legal variant of it, and each defective variant.

Every defective variant is a few lines a careless vendor really ships (one per weakness class of suite 1.0);
each must be refused, with its own requirement as the first root cause the report names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace

import pytest

from conformance.results import Status
from conformance.runner import RunOptions, run
from examples.vendor_module import Fault
from tests.conformance.conftest import free_port

Module = Callable[..., AbstractContextManager[str]]

DEFECTS = {
    Fault.IGNORE_EXPIRY: "QM-AUTH-002",
    Fault.IGNORE_SCOPE: "QM-AUTH-009",
    Fault.DROP_REQUIRED_FIELD: "QM-DATA-001",
    Fault.DUPLICATE_ACROSS_PAGES: "QM-LIST-001",
    Fault.IGNORE_UPDATED_SINCE: "QM-LIST-004",
    Fault.HTML_ERRORS: "QM-ERR-001",
    Fault.LEAK_PERSONAL: "QM-AUTH-011",
    Fault.CRASH_ON_BAD_INPUT: "QM-ERR-003",
    Fault.IGNORE_IF_MATCH: "QM-WRITE-005",
    Fault.ACCEPT_ALG_NONE: "QM-AUTH-007",
    Fault.OPTIONAL_EXP: "QM-AUTH-002",
    Fault.TRUST_HEADER_JWK: "QM-AUTH-014",
    Fault.HS256_PUBLIC_KEY: "QM-AUTH-015",
    Fault.SCOPE_ON_POST_ONLY: "QM-AUTH-009",
    Fault.TRUST_HOME_CITY: "QM-AUTH-010",
    Fault.LEAK_ON_LATER_PAGES: "QM-AUTH-011",
    Fault.IGNORE_CITY_FILTER: "QM-LIST-005",
    Fault.UPDATED_SINCE_AS_TEXT: "QM-LIST-004",
    Fault.FILTERS_LOST_ON_NEXT: "QM-LIST-005",
    Fault.LIMIT_IGNORED_ON_LATER_PAGES: "QM-LIST-002",
    Fault.LAST_PAGE_WITHOUT_NEXT: "QM-LIST-007",
    Fault.REQUIRED_ONLY_VALIDATION: "QM-WRITE-002",
    Fault.ETAG_OF_ID: "QM-WRITE-006",
    Fault.IF_MATCH_PUT_ONLY: "QM-WRITE-005",
    Fault.DELETED_STILL_LISTED: "QM-WRITE-007",
    Fault.PUT_TRUSTS_BODY_ID: "QM-WRITE-008",
    Fault.CRASH_ON_NULL_BODY: "QM-ERR-003",
    Fault.PROBLEM_WITHOUT_STATUS: "QM-ERR-001",
    Fault.LOOSENED_SCHEMA: "QM-DISC-005",
}


def test_every_defect_has_its_requirement() -> None:
    assert set(DEFECTS) == set(Fault)


def test_reference_module_is_certified(reference: str, options: Callable[[str], RunOptions]) -> None:
    report = run(options(reference))
    not_passed = [(r.test_id, r.status, r.message) for r in report.results if r.status is not Status.PASS]
    assert not_passed == []
    assert report.verdict == "certified"
    assert len(report.results) > 200
    assert report.duration_s < 30
    assert len(report.module.openapi_sha256) == 64
    assert report.notes == []  # clean-up deleted everything it created


@pytest.mark.parametrize("stamp_modified", [False, True], ids=["as-written", "stamps-dateModified"])
def test_same_module_same_verdict(stamp_modified: bool, module: Module, options: Callable[[str], RunOptions]) -> None:
    """Deterministic verdicts: the reference module, and a legal variant that stamps dateModified itself (its
    seeds may all land in one second, which once left updatedSince untested and the verdict to the clock)."""
    outcomes = set()
    with module(stamp_modified=stamp_modified) as base_url:
        for _ in range(int(os.environ.get("QALA_CONFORMANCE_REPEAT", "3"))):  # the figure: 20
            report = run(options(base_url))
            outcomes.add(tuple((r.test_id, r.status) for r in report.results))
            assert report.verdict == "certified", [(r.test_id, r.message) for r in report.results if r.blocking]
    assert len(outcomes) == 1


@pytest.mark.parametrize(("fault", "requirement"), sorted(DEFECTS.items()))
def test_defect_fails_its_requirement_first(
    fault: Fault, requirement: str, module: Module, options: Callable[[str], RunOptions]
) -> None:
    with module(fault) as base_url:
        report = run(replace(options(base_url), fail_fast=True))
    assert report.verdict == "not-certified"
    first = next(r for r in report.results if r.blocking)
    assert first.status is Status.FAIL
    assert first.root == requirement, (first.test_id, first.message)
    assert first.message
    assert first.evidence, "a failure carries the exchanges that show it"


@pytest.mark.parametrize(
    ("fault", "requirement"),
    [(Fault.PROBLEM_WITHOUT_STATUS, "QM-ERR-001"), (Fault.LAST_PAGE_WITHOUT_NEXT, "QM-LIST-007")],
)
def test_one_root_cause_groups_its_consequences(
    fault: Fault, requirement: str, module: Module, options: Callable[[str], RunOptions]
) -> None:
    with module(fault) as base_url:
        report = run(options(base_url))
    roots = report.root_causes()
    assert list(roots) == [requirement]
    assert len(roots[requirement]) > 10  # many tests failed, all explained by one root
    others = {r.requirement for r in report.results if r.status is Status.FAIL} - {requirement}
    assert others  # the consequences keep their own requirement, with the cause beside it
    assert report.summary()["rootCauses"] == [requirement]


def test_unreachable_module_fails_and_is_not_the_suites_fault(options: Callable[[str], RunOptions]) -> None:
    report = run(options(f"http://127.0.0.1:{free_port()}"))
    statuses = {r.status for r in report.results}
    assert Status.ERROR not in statuses
    assert Status.FAIL in statuses
    assert report.verdict == "not-certified"
    assert any("seeding failed" in note for note in report.notes)
