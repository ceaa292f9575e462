"""Run every test of a profile against a module and gather the results.

    options = RunOptions(profile="service-requests", base_url="http://127.0.0.1:9000")
    report = run(options)                    # serves the suite's JWKS on options.issuer_url meanwhile
    report.verdict                           # 'certified', 'not-certified' or 'incomplete'

Order of a run: fetch the module's ``/openapi.json`` (hashed for the certificate), seed the test data through
the write operations (or read back a fixture), run the planned tests in registry order, delete what the run
created. The same module gives the same verdict: the data are deterministic apart from the run id, and no test
draws random values.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from conformance import SUITE_VERSION
from conformance.checks import Check, planned_tests
from conformance.context import RunContext
from conformance.errors import ConfigurationError
from conformance.http import ModuleUnreachable, RecordingClient
from conformance.issuer import DEFAULT_ISSUER_URL, DEFAULT_STATE_DIR, SuiteIssuer
from conformance.outcomes import CheckFailed, CheckOmitted, CheckSkipped
from conformance.requirements import Catalogue
from conformance.results import ModuleInfo, Result, RunReport, Status
from conformance.seeding import build_seeds, load_fixture
from openapi.mandate import MANDATE_VERSION, mandate_document
from schemas import SchemaRegistry, SchemaVersion, UnknownType


@dataclass
class RunOptions:
    """Everything a run needs; the CLI fills it from its options."""

    profile: str
    base_url: str
    audience: str | None = None
    issuer_url: str = DEFAULT_ISSUER_URL
    state_dir: Path = DEFAULT_STATE_DIR
    city: str = "astana"
    other_city: str = "karaganda"
    fixture: Path | None = None
    module_name: str | None = None
    vendor: str = "unknown"
    module_version: str | None = None
    timeout: float = 10.0


class Observer(Protocol):
    """Told about progress; the CLI's live view implements it."""

    def started(self, total: int) -> None: ...

    def finished(self, result: Result) -> None: ...


class _Silent:
    def started(self, total: int) -> None:
        pass

    def finished(self, result: Result) -> None:
        pass


def resolve_profile(name: str) -> SchemaVersion:
    try:
        return SchemaRegistry.load().get(name)
    except UnknownType as exc:
        raise ConfigurationError(f"unknown profile {name!r}: {exc}") from exc


def run(options: RunOptions, observer: Observer | None = None, issuer: SuiteIssuer | None = None) -> RunReport:
    """Run the profile's tests against ``options.base_url``; never raises for a module's misbehaviour."""
    observer = observer or _Silent()
    profile = resolve_profile(options.profile)
    catalogue = Catalogue.load()
    plan = planned_tests(profile)
    for _, _, item in plan:
        catalogue.get(item.requirement)  # an unknown requirement is the suite's bug: refuse to run at all
    issuer = issuer or SuiteIssuer.from_state_dir(options.state_dir, options.issuer_url)
    fixture = load_fixture(options.fixture, profile) if options.fixture else None
    started = time.perf_counter()
    run_id = secrets.token_hex(4)
    base_url = options.base_url.rstrip("/")
    client = RecordingClient(base_url, timeout=options.timeout)
    ctx = RunContext(
        profile=profile,
        mandate=mandate_document(profile),
        client=client,
        issuer=issuer,
        audience=options.audience or base_url,
        run_id=run_id,
        city=options.city,
        other_city=options.other_city,
        read_only=fixture is not None,
    )
    report = RunReport(
        run_id=run_id,
        profile=profile.collection,
        suite_version=SUITE_VERSION,
        mandate_version=MANDATE_VERSION,
        module=ModuleInfo(base_url, options.module_name or "", options.vendor, options.module_version or ""),
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        mode="read-only fixture" if fixture is not None else "seeded through writes",
    )
    try:
        with issuer.serve():
            client.recording = report.setup
            _discover(ctx, report)
            _seed(ctx, fixture)
            if ctx.seed_problem:
                report.notes.append(f"seeding failed: {ctx.seed_problem}")
            observer.started(len(plan))
            for test_id, param, item in plan:
                result = _run_one(ctx, catalogue, test_id, param, item)
                report.results.append(result)
                observer.finished(result)
            client.recording = report.setup
            _clean_up(ctx, report)
    finally:
        client.close()
        report.duration_s = time.perf_counter() - started
    return report


def _discover(ctx: RunContext, report: RunReport) -> None:
    try:
        response = ctx.client.request("GET", "/openapi.json", headers={"Accept": "application/json"})
    except ModuleUnreachable as exc:
        report.notes.append(str(exc))
        return
    ctx.openapi_response = response
    ctx.openapi_body = response.content if response.status_code == 200 else b""
    if ctx.openapi_body:
        report.module.openapi_sha256 = hashlib.sha256(ctx.openapi_body).hexdigest()
        try:
            info = response.json().get("info", {})
        except (ValueError, AttributeError):
            info = {}
        report.module.name = report.module.name or str(info.get("title", ""))
        report.module.version = report.module.version or str(info.get("version", ""))


def _seed(ctx: RunContext, fixture: list[dict[str, object]] | None) -> None:
    token = ctx.token()
    try:
        if fixture is None:
            ctx.written = build_seeds(ctx.profile, ctx.run_id, ctx.city)
            for entity in ctx.written:
                ctx.created.add(str(entity["id"]))
                response = ctx.send("POST", ctx.collection_path, token=token, body=entity)
                if response.status_code != 201:
                    ctx.seed_problem = f"creating {entity['id']} answered {response.status_code}, not 201"
                    return
        else:
            ctx.written = [dict(entity) for entity in fixture]
        for entity in ctx.written:
            response = ctx.get(ctx.entity_path(str(entity["id"])), token=token)
            if response.status_code != 200:
                ctx.seed_problem = f"reading {entity['id']} back answered {response.status_code}, not 200"
                return
            ctx.stored[str(entity["id"])] = response.json()
    except (ModuleUnreachable, ValueError) as exc:
        ctx.seed_problem = str(exc)


def _run_one(ctx: RunContext, catalogue: Catalogue, test_id: str, param: str, item: Check) -> Result:
    requirement = catalogue.get(item.requirement)
    result = Result(
        test_id=test_id,
        requirement=requirement.id,
        title=requirement.title,
        severity=requirement.severity,
        status=Status.PASS,
        requirement_text=requirement.text,
    )
    if not requirement.applies_to(ctx.profile):
        result.status, result.message = Status.OMIT, f"not part of the {ctx.collection} profile"
        return result
    ctx.client.recording = result.evidence
    started = time.perf_counter()
    try:
        result.message = item.function(ctx, param) or ""
    except CheckFailed as failure:
        result.status, result.message, result.expected = Status.FAIL, failure.message, failure.expected
    except CheckSkipped as skipped:
        result.status, result.message = Status.SKIP, skipped.message
    except CheckOmitted as omitted:
        result.status, result.message = Status.OMIT, omitted.message
    except ModuleUnreachable as exc:
        result.status, result.message = Status.FAIL, str(exc)
    except Exception as exc:  # the suite's own fault: reported apart, never blamed on the module
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        result.status, result.message = Status.ERROR, f"suite error {type(exc).__name__} at {where}: {exc}"
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _clean_up(ctx: RunContext, report: RunReport) -> None:
    if ctx.read_only:
        return
    token = ctx.token(cities=[ctx.city, ctx.other_city])
    left = []
    for entity_id in sorted(ctx.created):
        try:
            response = ctx.send("DELETE", ctx.entity_path(entity_id), token=token)
        except ModuleUnreachable:
            left.append(entity_id)
            continue
        if response.status_code not in (204, 200, 404):
            left.append(entity_id)
    if left:
        report.notes.append(f"clean-up could not delete {len(left)} entities: {', '.join(left[:10])}")
