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
import json
import secrets
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from conformance import SUITE_VERSION
from conformance.checks import Check, planned_tests
from conformance.context import RunContext
from conformance.errors import ConfigurationError
from conformance.http import ModuleUnreachable, RecordingClient
from conformance.issuer import DEFAULT_ISSUER_URL, DEFAULT_STATE_DIR, SuiteIssuer
from conformance.outcomes import CheckFailed, CheckOmitted, CheckSkipped
from conformance.requirements import Catalogue
from conformance.results import ModuleInfo, Result, RunReport, Status
from conformance.seeding import build_seeds, load_fixture, parse_instant
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
    fail_fast: bool = False
    """Stop at the first failed MUST test (its root cause is then the report's first); for mutation testing."""
    issuer_bind: str | None = None
    """Address the issuer listens on (default: the issuer URL's host); 0.0.0.0 for a module on another host."""


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in LOOPBACK or host.startswith("127.")


def check_reachability(options: RunOptions) -> None:
    """Refuse at once a run whose module could never fetch the suite's keys (remote module, loopback issuer)."""
    if _loopback(options.issuer_url) and not _loopback(options.base_url):
        raise ConfigurationError(
            f"the module at {options.base_url} cannot reach the suite's issuer at {options.issuer_url} (a loopback "
            "address); pass --issuer-url with an address of this machine the module can reach"
        )


def openapi_digest(document: Any) -> str:
    """SHA-256 of the module's OpenAPI document with ``servers`` removed, as canonical JSON.

    The same module served at two addresses (or with its keys in another order) gets the same digest, so a
    certificate binds the API, not the test server it was run against.

    >>> openapi_digest({"openapi": "3.1.0", "servers": [{"url": "http://a"}]}) == openapi_digest({"openapi": "3.1.0"})
    True
    """
    return hashlib.sha256(
        json.dumps(_without_servers(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _without_servers(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_servers(value) for key, value in node.items() if key != "servers"}
    if isinstance(node, list):
        return [_without_servers(item) for item in node]
    return node


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
    check_reachability(options)
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
        with issuer.serve(options.issuer_bind):
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
                if options.fail_fast and result.blocking and result.status is Status.FAIL:
                    report.notes.append(f"stopped after the first failure ({result.test_id}): --fail-fast")
                    break
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
    ctx.openapi_exchange = report.setup[-1] if report.setup else None
    ctx.openapi_body = response.content if response.status_code == 200 else b""
    if not ctx.openapi_body:
        return
    try:
        document = response.json()
    except ValueError:
        report.module.openapi_sha256 = hashlib.sha256(ctx.openapi_body).hexdigest()
        return
    report.module.openapi_sha256 = openapi_digest(document)
    info = document.get("info") if isinstance(document, dict) else None
    info = info if isinstance(info, dict) else {}
    mandate_info = ctx.mandate["info"]
    # the mandate's own title and version name the mandate, not the module: never put them in a certificate
    title, version = str(info.get("title", "")), str(info.get("version", ""))
    own = title and title != mandate_info["title"]
    report.module.name = report.module.name or (title if own else "")
    report.module.version = report.module.version or (version if own else "")
    if not report.module.name or not report.module.version:
        report.notes.append(
            "the module's /openapi.json names no module of its own (info.title and info.version are the "
            "mandate's or missing): pass --module-name and --module-version for a certificate"
        )


SPREAD_PAUSE = 1.05
"""Seconds between two halves of the seeds when the module stamps dateModified itself (one-second clocks)."""


def _seed(ctx: RunContext, fixture: list[dict[str, object]] | None) -> None:
    try:
        if fixture is None:
            ctx.written = build_seeds(ctx.profile, ctx.run_id, ctx.cities)
            for entity in ctx.written:
                ctx.created.add(str(entity["id"]))
                if not _write_seed(ctx, "POST", entity, 201):
                    return
        else:
            ctx.written = [dict(entity) for entity in fixture]
        if not _read_back(ctx):
            return
        if fixture is None and _distinct_instants(ctx) < 2:
            # The module stamps dateModified itself and every seed landed in the same tick: write the later
            # half again after a pause, so updatedSince has an instant to split on whatever the module's clock.
            time.sleep(SPREAD_PAUSE)
            for entity in ctx.written[len(ctx.written) // 2 :]:
                if not _write_seed(ctx, "PUT", entity, 200):
                    return
            _read_back(ctx)
    except (ModuleUnreachable, ValueError) as exc:
        ctx.seed_problem = str(exc)


def _write_seed(ctx: RunContext, method: str, entity: dict[str, Any], status: int) -> bool:
    # each seed is written with a token for its own city only: a module that trusts a fixed city fails here
    token = ctx.token(cities=[str(entity["city"])])
    path = ctx.collection_path if method == "POST" else ctx.entity_path(str(entity["id"]))
    response = ctx.send(method, path, token=token, body=entity)
    if response.status_code != status:
        ctx.seed_problem = f"{method} of {entity['id']} answered {response.status_code}, not {status}"
        return False
    return True


def _read_back(ctx: RunContext) -> bool:
    token = ctx.token()
    for entity in ctx.written:
        response = ctx.get(ctx.entity_path(str(entity["id"])), token=token)
        if response.status_code != 200:
            ctx.seed_problem = f"reading {entity['id']} back answered {response.status_code}, not 200"
            return False
        ctx.stored[str(entity["id"])] = response.json()
    return True


def _distinct_instants(ctx: RunContext) -> int:
    return len({instant for stored in ctx.stored.values() if (instant := parse_instant(stored.get("dateModified")))})


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
        result.cause = failure.cause if failure.cause != requirement.id else ""
    except CheckSkipped as skipped:
        result.status, result.message = Status.SKIP, skipped.message
    except CheckOmitted as omitted:
        # only a read-only run may leave a test out; anything else that could not be tested blocks the verdict
        status = Status.OMIT if ctx.read_only else Status.SKIP
        result.status, result.message = status, omitted.message
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
