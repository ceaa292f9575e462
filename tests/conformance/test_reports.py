"""The three reports are written, parse, carry the evidence, and never carry a token."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from xml.etree import ElementTree as ET

from conformance.reports import write_reports
from conformance.runner import RunOptions, run
from examples.vendor_module import Fault

TOP_LEVEL = {"reportVersion", "suite", "mandateVersion", "profile", "mode", "runId", "startedAt", "durationSeconds",
             "module", "verdict", "summary", "notes", "results", "setup"}  # fmt: skip
RESULT_KEYS = {"testId", "requirement", "title", "severity", "status", "message", "expected", "requirementText",
               "durationMs", "cause", "evidence"}  # fmt: skip


def test_reports_of_a_failing_run(
    module: Callable[..., AbstractContextManager[str]], options: Callable[[str], RunOptions], tmp_path: Path
) -> None:
    with module(Fault.IGNORE_SCOPE) as base_url:
        report = run(options(base_url))
    paths = write_reports(report, tmp_path / "report")

    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert set(data) == TOP_LEVEL
    assert data["verdict"] == "not-certified"
    assert data["summary"]["mustFailed"] == ["QM-AUTH-009", "QM-ERR-001"]
    assert data["summary"]["rootCauses"] == ["QM-AUTH-009"]  # the 200 where a 403 was due is AUTH-009's breach
    consequence = next(r for r in data["results"] if r["testId"] == "QM-ERR-001/problem-details[forbidden]")
    assert consequence["cause"] == "QM-AUTH-009"
    assert all(set(result) == RESULT_KEYS for result in data["results"])
    failed = next(r for r in data["results"] if r["testId"] == "QM-AUTH-009/without-scope[list]")
    assert failed["status"] == "fail"
    assert failed["evidence"][0]["status"] == 200
    assert failed["evidence"][0]["request_headers"]["authorization"] == "Bearer [REDACTED]"

    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == str(data["summary"]["fail"])
    names = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert "QM-AUTH-009/without-scope[list] (MUST)" in names

    html = paths["html"].read_text(encoding="utf-8")
    assert "Verdict: not-certified" in html
    assert "Fix first" in html
    assert "Consequence of QM-AUTH-009" in html
    assert "QM-AUTH-009/without-scope[list]" in html
    assert "Scopes: &lt;collection&gt;:read" in html  # the requirement's text, escaped


def test_no_token_reaches_any_report(reference: str, options: Callable[[str], RunOptions], tmp_path: Path) -> None:
    report = run(options(reference))
    paths = write_reports(report, tmp_path)
    everything = "".join(path.read_text(encoding="utf-8") for path in paths.values())
    assert not re.search(r"eyJ[\w-]*\.[\w-]*\.", everything)  # no JWT (header.payload.) anywhere
    exchanges = [e for r in report.results for e in r.evidence] + report.setup
    assert len(exchanges) > 100
    sent = [e.request_headers.get("authorization") for e in exchanges if "authorization" in e.request_headers]
    assert sent
    assert set(sent) == {"Bearer [REDACTED]"}
