"""The real suite against the reference module, and against each defective variant of it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

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
}


def test_reference_module_is_certified(reference: str, options: Callable[[str], RunOptions]) -> None:
    report = run(options(reference))
    not_passed = [(r.test_id, r.status, r.message) for r in report.results if r.status is not Status.PASS]
    assert not_passed == []
    assert report.verdict == "certified"
    assert len(report.results) > 60
    assert report.duration_s < 30
    assert len(report.module.openapi_sha256) == 64
    assert report.notes == []  # clean-up deleted everything it created


def test_same_module_same_verdict(reference: str, options: Callable[[str], RunOptions]) -> None:
    first, second = run(options(reference)), run(options(reference))
    assert [(r.test_id, r.status) for r in first.results] == [(r.test_id, r.status) for r in second.results]
    assert first.run_id != second.run_id


@pytest.mark.parametrize(("fault", "requirement"), sorted(DEFECTS.items()))
def test_defect_fails_its_requirement(
    fault: Fault, requirement: str, module: Module, options: Callable[[str], RunOptions]
) -> None:
    with module(fault) as base_url:
        report = run(options(base_url))
    assert report.verdict == "not-certified"
    assert requirement in report.summary()["mustFailed"]
    failed = [r for r in report.results if r.requirement == requirement and r.status is Status.FAIL]
    assert failed[0].message
    assert failed[0].evidence, "a failure carries the exchanges that show it"


def test_unreachable_module_fails_and_is_not_the_suites_fault(options: Callable[[str], RunOptions]) -> None:
    report = run(options(f"http://127.0.0.1:{free_port()}"))
    statuses = {r.status for r in report.results}
    assert Status.ERROR not in statuses
    assert Status.FAIL in statuses
    assert report.verdict == "not-certified"
    assert any("seeding failed" in note for note in report.notes)
