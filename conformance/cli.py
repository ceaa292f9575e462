"""``qala conformance``: run the suite, list the requirements, verify a certificate, show the suite's issuer.

qala conformance issuer                                  # what to configure the module to trust
qala conformance run --profile service-requests --base-url http://127.0.0.1:9000 --report-dir report
qala conformance run ... --fuzz --fuzz-examples 20         # then an advisory Schemathesis phase, never in the verdict
qala conformance verify report/certificate.jws           # against the hub's /oauth/jwks

The suite's issuer key lives in the hub's home (``<home>/conformance``), so its identity does not depend on the
directory a command is typed in; the certificate is signed with the conformance key of the home's hub.
qala conformance requirements --profile service-requests
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conformance.certificate import issue_certificate, load_jwks, verify_certificate
from conformance.errors import ConfigurationError, ConformanceError
from conformance.hubkeys import hub_signer
from conformance.issuer import DEFAULT_ISSUER_URL, SuiteIssuer
from conformance.preflight import check_module
from conformance.reports import write_reports
from conformance.requirements import Catalogue
from conformance.results import FuzzOperation, FuzzReport, Result, RunReport, Status
from conformance.runner import RunOptions, resolve_profile, run
from gateway.settings import Settings
from qala.cli import CliError
from qala.home import Home

app = typer.Typer(help="Certify a module against the open-API mandate.", no_args_is_help=True)
console = Console(highlight=False)
STYLES = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.SKIP: "yellow",
    Status.OMIT: "dim",
    Status.ERROR: "magenta",
}

StateDir = Annotated[
    Path | None, typer.Option(help="Where the suite keeps its issuer key between runs (default: <home>/conformance).")
]


def _state_dir(value: Path | None) -> Path:
    return value if value is not None else Home(Settings().home).conformance


IssuerUrl = Annotated[
    str,
    typer.Option(
        envvar="QALA_CONFORMANCE_ISSUER_URL",
        help="The suite's issuer URL; its JWKS is served on this port during a run.",
    ),
]


class LiveView:
    """The run's progress bar, with one line per test that did not pass (and a dot-free count of those that did)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("testing", total=None)

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def finished(self, result: Result) -> None:
        self.progress.advance(self.task)
        self.progress.update(self.task, description=result.test_id)
        if result.status is not Status.PASS:
            style = STYLES[result.status]
            line = f"[{style}]{result.status.upper():5}[/] {result.test_id} ({result.severity}) {result.message}"
            self.progress.console.print(line, markup=True, highlight=False, soft_wrap=True)

    def fuzz_started(self, total: int) -> None:
        self.progress.update(self.task, description="fuzz (advisory)", total=total, completed=0)

    def fuzzed(self, operation: FuzzOperation) -> None:
        self.progress.advance(self.task)
        self.progress.update(self.task, description=f"fuzz {operation.operation}")


Fuzzer = Callable[[RunOptions, SuiteIssuer, LiveView], FuzzReport]


def _fuzzer(examples: int, seconds: float) -> Fuzzer:
    """The fuzz phase, loaded before the run so that a missing Schemathesis is refused before anything runs."""
    try:  # Schemathesis is an optional extra: only --fuzz needs it, so only --fuzz imports it
        from conformance.fuzz import FuzzSettings, fuzz  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            f"--fuzz needs Schemathesis, which cannot be loaded ({exc}): install the 'fuzz' extra as `make test` does"
        ) from exc
    settings = FuzzSettings(examples=examples, seconds=seconds)
    return lambda options, issuer, view: fuzz(options, issuer, settings, view)


def _print_fuzz(fuzz: FuzzReport) -> None:
    console.print(fuzz.headline(), markup=False)
    for finding in fuzz.findings:
        console.print(f"  {finding.line()}", markup=False, soft_wrap=True)
    for note in fuzz.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)


def _sign(report: RunReport, report_dir: Path) -> Path:
    if not report.module.name or not report.module.version:
        raise ConformanceError(
            "certified, but no certificate: the module's /openapi.json names no module of its own (its info block "
            "is the mandate's); set info.title and info.version, or pass --module-name and --module-version"
        )

    async def sign() -> tuple[str, dict[str, object]]:
        async with hub_signer(Settings()) as signer:
            return issue_certificate(report, signer), dict(signer.jwks)

    token, jwks = asyncio.run(sign())
    issuer = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")).get("iss", "")
    if urlsplit(issuer).hostname in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"note: the certificate's issuer is {issuer}, a loopback address cities cannot fetch keys from; "
            "set QALA_ISSUER to the hub's public URL",
            markup=False,
        )
    (report_dir / "hub-jwks.json").write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    path = report_dir / "certificate.jws"
    path.write_text(token + "\n", encoding="utf-8")
    return path


@app.command("run")
def run_command(  # noqa: PLR0917 - Typer maps every option to a parameter
    profile: Annotated[str, typer.Option(help="Collection profile, e.g. service-requests.")],
    base_url: Annotated[str, typer.Option(help="The module's base URL (where /openapi.json is).")],
    report_dir: Annotated[Path, typer.Option(help="Where to write the reports and the certificate.")] = Path(
        "conformance-report"
    ),
    audience: Annotated[str | None, typer.Option(help="The aud the module expects (default: the base URL).")] = None,
    issuer_url: IssuerUrl = DEFAULT_ISSUER_URL,
    state_dir: StateDir = None,
    city: Annotated[str, typer.Option(help="City of the test data (the token's cities).")] = "astana",
    fixture: Annotated[Path | None, typer.Option(help="NDJSON entities already loaded (read-only module).")] = None,
    module_name: Annotated[str | None, typer.Option(help="Default: info.title of its OpenAPI.")] = None,
    vendor: Annotated[str, typer.Option(help="Vendor named in the certificate.")] = "unknown",
    module_version: Annotated[str | None, typer.Option(help="Default: info.version of its OpenAPI.")] = None,
    sign: Annotated[bool, typer.Option(help="Sign a certificate with the hub's key when certified.")] = True,
    other_city: Annotated[str, typer.Option(help="The second city of the test data.")] = "karaganda",
    issuer_bind: Annotated[
        str | None, typer.Option(help="Address the issuer listens on (0.0.0.0 for a module on another host).")
    ] = None,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first failed MUST test.")] = False,
    fuzz: Annotated[
        bool, typer.Option(help="Then fuzz the module with Schemathesis: advisory findings, never in the verdict.")
    ] = False,
    fuzz_examples: Annotated[
        int, typer.Option(min=1, help="Fuzz: generated requests per operation, for valid and for invalid input.")
    ] = 20,
    fuzz_seconds: Annotated[float, typer.Option(min=1, help="Fuzz: the phase sends no request after this.")] = 60.0,
) -> None:
    """Run every test of PROFILE against the module; exit 0 only when it is certified."""
    options = RunOptions(
        profile=profile,
        base_url=base_url,
        audience=audience,
        issuer_url=issuer_url,
        state_dir=_state_dir(state_dir),
        city=city,
        fixture=fixture,
        module_name=module_name,
        vendor=vendor,
        module_version=module_version,
        other_city=other_city,
        issuer_bind=issuer_bind,
        fail_fast=fail_fast,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        fuzzer = _fuzzer(fuzz_examples, fuzz_seconds) if fuzz else None
        check_module(base_url)
        issuer = SuiteIssuer.from_state_dir(options.state_dir, options.issuer_url)
        with Progress(*columns, console=console, transient=True) as progress:
            view = LiveView(progress)
            report = run(options, view, issuer)
            if fuzzer is not None:
                report.fuzz = fuzzer(options, issuer, view)
        paths = write_reports(report, report_dir)
        certificate = _sign(report, report_dir) if report.certified and sign else None
    except ConformanceError as exc:
        raise CliError(str(exc), 2) from exc
    summary = report.summary()
    console.print(
        f"{summary['pass']} passed, {summary['fail']} failed, {summary['skip']} skipped, {summary['omit']} omitted, "
        f"{summary['error']} suite errors in {report.duration_s:.1f} s"
    )
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    if report.fuzz is not None:
        _print_fuzz(report.fuzz)
    console.print(f"reports: {paths['json']}, {paths['junit']}, {paths['html']}", markup=False)
    if report.verdict == "incomplete":
        raise CliError(f"the suite itself failed on {', '.join(summary['suiteErrors'])}; report it to Qala", 3)
    if not report.certified:
        roots = report.root_causes()
        named = [f"{root} ({len(tests)} tests)" for root, tests in roots.items()]
        untested = summary["mustUntested"]
        detail = "; ".join(
            part
            for part in (
                f"fix first: {', '.join(named)}" if named else "",
                f"MUST requirements untested: {', '.join(untested)}" if untested else "",
            )
            if part
        )
        raise CliError(f"not certified: {detail or 'see report'}", 1)
    console.print(f"[bold green]certified[/]: {certificate or 'not signed (--no-sign)'}")


@app.command("requirements")
def requirements_command(
    profile: Annotated[str | None, typer.Option(help="Only the requirements of this profile.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the requirements of the mandate with their IDs, severity and source."""
    try:
        catalogue = Catalogue.load()
        selected = catalogue.for_profile(resolve_profile(profile)) if profile else list(catalogue)
    except ConformanceError as exc:
        raise CliError(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps([requirement.as_json() for requirement in selected], indent=2, ensure_ascii=False))
        return
    table = Table("ID", "Severity", "Requirement", "Source", "Since")
    for requirement in selected:
        table.add_row(requirement.id, requirement.severity, requirement.title, requirement.source, requirement.since)
    console.print(table)


@app.command("verify")
def verify_command(
    certificate: Annotated[Path, typer.Argument(help="A certificate.jws file.")],
    jwks: Annotated[
        str | None, typer.Option(help="JWKS file or URL (default: the /oauth/jwks of the home's hub, QALA_ISSUER).")
    ] = None,
) -> None:
    """Check a certificate's signature, type and validity; exit 1 when it does not verify."""
    if jwks is None:
        jwks = f"{Settings().issuer}/oauth/jwks"
    try:
        token = certificate.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {certificate}: {exc.strerror}") from exc
    try:
        verified = verify_certificate(token, load_jwks(jwks))
    except ConformanceError as exc:
        raise CliError(f"certificate rejected: {exc}", 1) from exc
    console.print(f"valid: {verified.summary}", markup=False)
    issued, expires = (_day(verified.claims[claim]) for claim in ("iat", "exp"))
    sha = verified.claims["module"]["openapiSha256"]
    console.print(f"issued {issued}, expires {expires}, OpenAPI SHA-256 {sha}", markup=False)


def _day(seconds: object) -> str:
    return datetime.fromtimestamp(float(str(seconds)), UTC).strftime("%Y-%m-%d %H:%M UTC")


@app.command("issuer")
def issuer_command(issuer_url: IssuerUrl = DEFAULT_ISSUER_URL, state_dir: StateDir = None) -> None:
    """Show the suite's issuer identity: what a module must be configured to trust."""
    try:
        issuer = SuiteIssuer.from_state_dir(_state_dir(state_dir), issuer_url)
    except ConformanceError as exc:
        raise CliError(str(exc)) from exc
    console.print(f"issuer:   {issuer.url}\njwks_uri: {issuer.jwks_url}\nkid:      {issuer.kid}", markup=False)
    typer.echo(json.dumps(issuer.jwks(), indent=2))
