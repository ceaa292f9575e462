"""The advisory fuzz phase (``qala conformance run --fuzz``): it fuzzes every operation of the module's document,
reports what it finds beside the verdict, and never changes the verdict or the certificate."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.responses import PlainTextResponse
from typer.testing import CliRunner

from conformance.issuer import SuiteIssuer
from conformance.reports import write_reports
from conformance.runner import RunOptions, run
from conformance.serving import serve_app
from examples.vendor_module import Fault, create_app
from qala.cli import build_app
from tests.conformance.conftest import AUDIENCE
from tests.conformance.test_cli import run_args

pytest.importorskip("schemathesis", reason="pip install --no-deps 'schemathesis>=4.32' (make test does)")

from conformance import fuzz as fuzzing  # needs Schemathesis: after the skip above

Module = Callable[..., AbstractContextManager[str]]
Options = Callable[[str], RunOptions]
METHODS = {"get", "put", "post", "delete", "patch"}
FEW = fuzzing.FuzzSettings(examples=10)


def operations_of(base_url: str) -> set[str]:
    document = httpx.get(f"{base_url}/openapi.json").json()
    paths = document["paths"].items()
    return {f"{method.upper()} {path}" for path, item in paths for method in item if method in METHODS}


def issuer_of(options: RunOptions) -> SuiteIssuer:
    return SuiteIssuer.from_state_dir(options.state_dir, options.issuer_url)


def crash_on_antimeridian(app: Any) -> Any:
    """The reference module with a careless bbox: a box whose west edge is east of its east edge (one across the
    antimeridian) crashes the list. No MUST test sends one; a fuzzer does."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            box = parse_qs(scope["query_string"].decode()).get("bbox", [""])[0].split(",")
            try:
                crossing = float(box[0]) > float(box[2])
            except (ValueError, IndexError):
                crossing = False
            if crossing:
                await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
                return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def careless(issuer_url: str) -> Iterator[str]:
    app = create_app(issuer_url, f"{issuer_url}/oauth/jwks", AUDIENCE)
    with serve_app(crash_on_antimeridian(app), "127.0.0.1", 0) as base_url:
        yield base_url


def test_reference_module_is_certified_and_fuzzed_on_every_operation(
    reference: str, options: Options, tmp_path: Path
) -> None:
    opts = options(reference)
    issuer = issuer_of(opts)
    report = run(opts, issuer=issuer)
    report.fuzz = fuzzing.fuzz(opts, issuer, FEW)

    assert report.verdict == "certified"
    fuzzed = {operation.operation: operation for operation in report.fuzz.operations}
    assert set(fuzzed) == operations_of(reference), (report.fuzz.notes, report.fuzz.skipped)
    assert len(fuzzed) == 6
    assert all(operation.requests > 0 for operation in fuzzed.values())
    assert report.fuzz.findings == []
    # generated entities are aligned with the token's city, so writes really happen, and are then deleted
    assert fuzzed["POST /service-requests"].statuses.get("201", 0) > 0
    assert any(re.fullmatch(r"deleted [1-9]\d* entities the fuzzer created", note) for note in report.fuzz.notes)
    token = issuer.mint(audience=AUDIENCE, scopes=["service-requests:read"], cities=[opts.city, opts.other_city])
    left = httpx.get(f"{reference}/service-requests", headers={"Authorization": f"Bearer {token}"}).json()
    assert left["items"] == []

    paths = write_reports(report, tmp_path / "report")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["verdict"] == "certified"
    section = data["advisory"]["fuzz"]
    assert section["advisory"] is True
    assert section["examplesPerOperation"] == 10
    assert {operation["operation"] for operation in section["operations"]} == set(fuzzed)
    html = paths["html"].read_text(encoding="utf-8")
    assert "Advisory: fuzzing (not part of the verdict)" in html
    assert "0 findings on 6 operations" in html


def test_a_crash_is_an_advisory_finding_and_leaves_the_verdict_alone(module: Module, options: Options) -> None:
    with module(Fault.CRASH_ON_BAD_INPUT) as base_url:
        opts = options(base_url)
        issuer = issuer_of(opts)
        report = run(opts, issuer=issuer)
        before = (report.verdict, report.summary(), report.root_causes())
        report.fuzz = fuzzing.fuzz(opts, issuer, FEW)
        after = (report.verdict, report.summary(), report.root_causes())

        crash = next(f for f in report.fuzz.findings if f.check == "not_a_server_error")
        # the reproduction is a real one: the same request with a token of the suite crashes the module again
        url = re.search(r"'(http://[^']+)'", crash.curl)
        assert url is not None
        token = issuer.mint(audience=AUDIENCE, scopes=["service-requests:read"], cities=[opts.city])
        with issuer.serve():
            replayed = httpx.get(url.group(1), headers={"Authorization": f"Bearer {token}"})
    assert replayed.status_code == 500

    assert after == before
    assert report.verdict == "not-certified"  # the MUST run's own finding (QM-ERR-003), not the fuzzer's
    assert (crash.operation, crash.status) == ("GET /service-requests", 500)
    assert "cursor=" in crash.curl
    assert '"Authorization: Bearer $TOKEN"' in crash.curl
    assert not re.search(r"eyJ[\w-]*\.[\w-]*\.", json.dumps(report.as_json()))
    assert {f.operation for f in report.fuzz.findings} == {"GET /service-requests"}  # one crash, one operation
    assert "check" not in report.as_json()["summary"]


def test_same_module_same_requests_and_findings(module: Module, options: Options) -> None:
    with module(Fault.CRASH_ON_BAD_INPUT) as base_url:
        opts = options(base_url)
        issuer = issuer_of(opts)
        first, second = (fuzzing.fuzz(opts, issuer, fuzzing.FuzzSettings(examples=5)) for _ in range(2))
    assert first.findings
    assert first.findings == second.findings
    assert [op.as_json() for op in first.operations] == [op.as_json() for op in second.operations]


def test_read_only_runs_fuzz_reads_only_and_a_spent_time_limit_sends_nothing(reference: str, options: Options) -> None:
    opts = options(reference)
    read_only = fuzzing.fuzz(replace(opts, fixture=Path("entities.ndjson")), issuer_of(opts), FEW)
    assert {op.operation.split()[0] for op in read_only.operations} == {"GET"}
    assert set(read_only.skipped) == {"POST /service-requests", "PUT /service-requests/{id}",
                                      "DELETE /service-requests/{id}"}  # fmt: skip

    spent = fuzzing.fuzz(opts, issuer_of(opts), fuzzing.FuzzSettings(examples=10, seconds=0))
    assert spent.operations == []
    assert len(spent.skipped) == 6
    assert all("time limit" in reason for reason in spent.skipped.values())


def test_an_internal_error_is_one_note_not_a_crash(
    reference: str, options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(document: dict[str, Any]) -> None:
        raise RuntimeError("schema loader exploded")

    monkeypatch.setattr(fuzzing.schemathesis.openapi, "from_dict", broken)
    report = fuzzing.fuzz(options(reference), issuer_of(options(reference)), FEW)
    assert report.findings == []
    assert len(report.notes) == 1
    assert report.notes[0].startswith("the fuzz phase stopped on an internal error: RuntimeError")
    assert report.notes[0].endswith("schema loader exploded")


@pytest.fixture
def hub_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALA_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("QALA_ENV", "demo")


@pytest.mark.usefixtures("hub_database")
def test_cli_prints_the_advisory_line_and_still_certifies(careless: str, issuer_url: str, tmp_path: Path) -> None:
    arguments = [*run_args(careless, issuer_url, tmp_path), "--fuzz", "--fuzz-examples", "10"]
    result = CliRunner().invoke(build_app(), arguments)

    assert result.exit_code == 0, result.output
    assert re.search(r"\d{3} passed, 0 failed", result.output)
    assert re.search(r"^fuzz \(advisory\): \d+ findings? on 1 of 6 operations, \d+ requests in [\d.]+ s$",
                     result.output, re.MULTILINE)  # fmt: skip
    assert re.search(r"^  GET /service-requests not_a_server_error \(HTTP 500\)", result.output, re.MULTILINE)
    assert "certified: " in result.output
    assert (tmp_path / "report" / "certificate.jws").exists()
    data = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "certified"
    crash = next(f for f in data["advisory"]["fuzz"]["findings"] if f["check"] == "not_a_server_error")
    assert "bbox=" in crash["curl"]


def test_fuzz_without_schemathesis_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, issuer_url: str, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "conformance.fuzz", None)  # what an installation without the extra sees
    result = CliRunner().invoke(build_app(), [*run_args("http://127.0.0.1:9", issuer_url, tmp_path), "--fuzz"])
    assert result.exit_code == 2
    assert "--fuzz needs Schemathesis" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "report").exists()
