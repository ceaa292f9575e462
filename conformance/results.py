"""What a run produces: one :class:`Result` per test, with its evidence, gathered in a :class:`RunReport`.

Statuses follow Inferno: ``pass``, ``fail`` (the module broke the requirement), ``skip`` (not enough data to
decide), ``omit`` (not applicable) and ``error`` (the suite's own fault, counted apart). A module is certified
when every MUST test passed or was omitted and the suite itself made no error.

    >>> result = Result("QM-AUTH-002/expired", "QM-AUTH-002", "An expired token is refused", "MUST", Status.PASS)
    >>> RunReport.verdict_of([result])
    'certified'

A run may also carry an advisory :class:`FuzzReport` (``qala conformance run --fuzz``): what a fuzzer found is
reported beside the verdict and never changes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 -- a test status, not a password
    FAIL = "fail"
    SKIP = "skip"
    OMIT = "omit"
    ERROR = "error"


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange, already redacted: no bearer token or secret ever reaches this object."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None
    response_headers: dict[str, str]
    response_body: str
    elapsed_ms: float
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """The outcome of one test."""

    test_id: str
    requirement: str
    title: str
    severity: str
    status: Status
    message: str = ""
    expected: str = ""
    requirement_text: str = ""
    duration_ms: float = 0.0
    evidence: list[Exchange] = field(default_factory=list)
    cause: str = ""
    """Another requirement whose breach made this test fail (empty when the failure is the test's own)."""

    @property
    def root(self) -> str:
        """The requirement to fix first for this failure: its cause, or its own requirement."""
        return self.cause or self.requirement

    @property
    def blocking(self) -> bool:
        """A MUST test that neither passed nor was omitted."""
        return self.severity == "MUST" and self.status in (Status.FAIL, Status.SKIP, Status.ERROR)

    def as_json(self) -> dict[str, Any]:
        return {
            "testId": self.test_id,
            "requirement": self.requirement,
            "title": self.title,
            "severity": self.severity,
            "status": str(self.status),
            "message": self.message,
            "expected": self.expected,
            "requirementText": self.requirement_text,
            "durationMs": round(self.duration_ms, 1),
            "cause": self.cause,
            "evidence": [exchange.as_json() for exchange in self.evidence],
        }


@dataclass
class ModuleInfo:
    base_url: str
    name: str
    vendor: str
    version: str
    openapi_sha256: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "baseUrl": self.base_url,
            "name": self.name,
            "vendor": self.vendor,
            "version": self.version,
            "openapiSha256": self.openapi_sha256,
        }


@dataclass(frozen=True)
class FuzzFinding:
    """One distinct problem the fuzzer found: an operation broke a check, shown with its first example."""

    operation: str
    check: str
    title: str
    message: str
    status: int | None
    curl: str

    def line(self) -> str:
        answer = f" (HTTP {self.status})" if self.status is not None else ""
        detail = f": {self.message.splitlines()[0]}" if self.message else ""
        return f"{self.operation} {self.check}{answer}{detail}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FuzzOperation:
    """How much one operation was fuzzed: requests sent and the statuses they got."""

    operation: str
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "requests": self.requests, "statuses": dict(sorted(self.statuses.items()))}


@dataclass
class FuzzReport:
    """The advisory fuzz phase of a run (:mod:`conformance.fuzz`); never part of the verdict or the certificate."""

    tool: str
    examples: int
    seconds: float
    checks: list[str]
    modes: list[str]
    operations: list[FuzzOperation] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Operations of the module's document that were not fuzzed, with the reason."""
    findings: list[FuzzFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def headline(self) -> str:
        """``fuzz (advisory): 2 findings on 1 of 6 operations, 212 requests in 1.3 s``."""
        hit = len({finding.operation for finding in self.findings})
        sent = sum(operation.requests for operation in self.operations)
        count, fuzzed = len(self.findings), len(self.operations)
        findings = f"{count} finding{'s' if count != 1 else ''}"
        operations = f"{f'{hit} of ' if hit else ''}{fuzzed} operation{'s' if fuzzed != 1 else ''}"
        return f"fuzz (advisory): {findings} on {operations}, {sent} requests in {self.duration_s:.1f} s"

    def as_json(self) -> dict[str, Any]:
        return {
            "advisory": True,
            "tool": self.tool,
            "examplesPerOperation": self.examples,
            "modes": self.modes,
            "seed": "derandomized",
            "timeLimitSeconds": self.seconds,
            "durationSeconds": round(self.duration_s, 3),
            "checks": self.checks,
            "operations": [operation.as_json() for operation in self.operations],
            "skipped": self.skipped,
            "findings": [finding.as_json() for finding in self.findings],
            "notes": self.notes,
        }


@dataclass
class RunReport:
    """Everything a run found; serialised to ``report.json`` and rendered to JUnit and HTML."""

    run_id: str
    profile: str
    suite_version: str
    mandate_version: str
    module: ModuleInfo
    started_at: str
    mode: str
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    setup: list[Exchange] = field(default_factory=list)
    duration_s: float = 0.0
    fuzz: FuzzReport | None = None
    """The advisory fuzz phase, when it ran; the verdict never looks at it."""

    @staticmethod
    def verdict_of(results: list[Result]) -> str:
        if any(result.status is Status.ERROR for result in results):
            return "incomplete"
        return "not-certified" if any(result.blocking for result in results) else "certified"

    @property
    def verdict(self) -> str:
        return self.verdict_of(self.results)

    @property
    def certified(self) -> bool:
        return self.verdict == "certified"

    def counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in Status}
        for result in self.results:
            counts[str(result.status)] += 1
        return counts

    def root_causes(self) -> dict[str, list[str]]:
        """Root requirement -> the failed tests it explains, roots in the order the run first met them.

        A missing ``status`` member in problem details fails every test that expects an error, but all those
        failures name QM-ERR-001 as their cause: the vendor sees one root and the tests it explains.
        """
        roots: dict[str, list[str]] = {}
        for result in self.results:
            if result.blocking and result.status is Status.FAIL:
                roots.setdefault(result.root, []).append(result.test_id)
        return roots

    def summary(self) -> dict[str, Any]:
        return {
            "total": len(self.results),
            **self.counts(),
            "mustFailed": sorted({r.requirement for r in self.results if r.blocking and r.status is Status.FAIL}),
            "rootCauses": list(self.root_causes()),
            "mustUntested": sorted({r.requirement for r in self.results if r.blocking and r.status is not Status.FAIL}),
            "shouldFailed": sorted(
                {r.requirement for r in self.results if r.severity == "SHOULD" and r.status is Status.FAIL}
            ),
            "suiteErrors": sorted(r.test_id for r in self.results if r.status is Status.ERROR),
        }

    def as_json(self) -> dict[str, Any]:
        data = {
            "reportVersion": "1",
            "suite": {"name": "qala-conformance", "version": self.suite_version},
            "mandateVersion": self.mandate_version,
            "profile": self.profile,
            "mode": self.mode,
            "runId": self.run_id,
            "startedAt": self.started_at,
            "durationSeconds": round(self.duration_s, 3),
            "module": self.module.as_json(),
            "verdict": self.verdict,
            "summary": self.summary(),
            "notes": self.notes,
            "results": [result.as_json() for result in self.results],
            "setup": [exchange.as_json() for exchange in self.setup],
        }
        if self.fuzz is not None:  # a key only added, and only by runs that fuzzed
            data["advisory"] = {"fuzz": self.fuzz.as_json()}
        return data
