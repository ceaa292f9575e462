"""The advisory fuzz phase: Schemathesis against the module's own ``/openapi.json``, after the MUST run.

    settings = FuzzSettings(examples=20, seconds=60)
    report.fuzz = fuzz(options, issuer, settings)        # the same issuer the run used; serves its JWKS meanwhile
    report.fuzz.headline()     # 'fuzz (advisory): 1 finding on 1 of 6 operations, 212 requests in 1.3 s'

Every operation of the module's document that the profile's mandate names gets ``examples`` generated requests
in each generation mode (schema-valid, then schema-invalid), sent with a valid token of the suite's issuer for
the run's two cities and every scope of the profile. Each answer is checked for a server error and for
conformance to the module's published document (status code, content type, body schema). Findings are advisory:
they go in the report beside the verdict and never change it (a MUST requirement is what certifies; a fuzzer's
finding is a lead to look at, and fuzzers have false positives).

Bounded and reproducible: a fixed number of examples, Hypothesis derandomized (the same document gives the same
requests), no shrinking, and a time limit after which no more requests are sent. Entities the fuzzer manages to
create are deleted at the end. Operations outside the profile's mandate are not fuzzed (a write token for them
was never the suite's to use); a read-only run (``--fixture``) fuzzes only GET operations. Whatever goes wrong
inside Schemathesis becomes a note of the phase, never a crash of the run.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import requests
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation

from conformance.context import RunContext
from conformance.http import ModuleUnreachable, RecordingClient, redact_text
from conformance.issuer import SuiteIssuer
from conformance.results import FuzzFinding, FuzzOperation, FuzzReport
from conformance.runner import RunOptions, resolve_profile
from openapi.mandate import mandate_document

Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
Example: TypeAlias = Case[Any]

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")
"""Schemathesis checks run on every answer, by name; a 5xx is checked by the first only (the rest would repeat it)."""
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
WRITES = frozenset({"POST", "PUT", "PATCH"})
ORDER = {"POST": 0, "PUT": 1, "PATCH": 1, "GET": 2, "DELETE": 4}
"""Writes first, so that reads list what the fuzzer created; deletes last."""
LOCAL_PREFIX = "qfz-"
"""Starts the local id of every entity the fuzzer writes: never one of the module's own, easy to find if left."""
MESSAGE_EXCERPT = 300


@dataclass(frozen=True)
class FuzzSettings:
    """How much to fuzz: ``examples`` requests per operation and mode, and a wall-clock limit for the phase."""

    examples: int = 20
    seconds: float = 60.0


class FuzzObserver(Protocol):
    """Told about progress; the CLI's live view implements it."""

    def fuzz_started(self, total: int) -> None: ...

    def fuzzed(self, operation: FuzzOperation) -> None: ...


class _Silent:
    def fuzz_started(self, total: int) -> None:
        pass

    def fuzzed(self, operation: FuzzOperation) -> None:
        pass


def fuzz(
    options: RunOptions, issuer: SuiteIssuer, fuzz_settings: FuzzSettings, observer: FuzzObserver | None = None
) -> FuzzReport:
    """Fuzz the module at ``options.base_url``; never raises for the module's or Schemathesis's misbehaviour."""
    report = FuzzReport(
        tool=f"schemathesis {schemathesis.__version__}",
        examples=fuzz_settings.examples,
        seconds=fuzz_settings.seconds,
        checks=list(CHECKS),
        modes=[str(mode.value) for mode in MODES],
    )
    started = time.perf_counter()
    profile = resolve_profile(options.profile)
    base_url = options.base_url.rstrip("/")
    client = RecordingClient(base_url, timeout=options.timeout)
    ctx = RunContext(
        profile=profile,
        mandate=mandate_document(profile),
        client=client,
        issuer=issuer,
        audience=options.audience or base_url,
        run_id="fuzz",
        city=options.city,
        other_city=options.other_city,
        read_only=options.fixture is not None,
    )
    try:
        with issuer.serve(options.issuer_bind):
            _Phase(ctx, report, fuzz_settings, observer or _Silent(), started, options.timeout).run()
    except Exception as exc:  # Schemathesis's or the suite's own fault: one note, never a crashed run
        report.notes.append(f"the fuzz phase stopped on an internal error: {_where(exc)}")
    finally:
        client.close()
        report.duration_s = time.perf_counter() - started
    return report


def _where(exc: BaseException) -> str:
    """``RuntimeError at schemas.py:12: the first line of its message``."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}{where}" + (f": {first}" if first else "")


class _Phase:
    """One fuzz phase: load the document, fuzz each selected operation, delete what was created."""

    def __init__(  # noqa: PLR0917 -- the phase's whole state
        self,
        ctx: RunContext,
        report: FuzzReport,
        fuzz_settings: FuzzSettings,
        observer: FuzzObserver,
        started: float,
        timeout: float,
    ) -> None:
        self.ctx, self.report, self.settings, self.observer = ctx, report, fuzz_settings, observer
        self.timeout = timeout
        self.deadline = started + fuzz_settings.seconds
        self.base_url = ctx.client.base_url
        self.headers = ctx.bearer(ctx.token())
        self.checks = [getattr(schemathesis.checks, name) for name in CHECKS]
        self.created: set[str] = set()
        self.seen: set[tuple[str, str, str]] = set()

    def run(self) -> None:
        document = self._document()
        if document is None:
            return
        schema = schemathesis.openapi.from_dict(document)
        operations = sorted(self._select(schema), key=lambda operation: ORDER.get(operation.method.upper(), 3))
        self.observer.fuzz_started(len(operations))
        try:
            with requests.Session() as session:
                for operation in operations:
                    if time.perf_counter() > self.deadline:
                        limit = f"{self.settings.seconds:g} s"
                        self.report.skipped[operation.label] = f"the phase's time limit ({limit}) ran out"
                        continue
                    done = FuzzOperation(operation.label)
                    self.headers = self.ctx.bearer(self.ctx.token())  # fresh for each: a long phase outlives one
                    for mode in MODES:
                        self._fuzz(operation, mode, done, session)
                    self.report.operations.append(done)
                    self.observer.fuzzed(done)
        finally:
            self._clean_up()

    def _document(self) -> dict[str, Any] | None:
        try:
            response = self.ctx.client.request("GET", "/openapi.json", headers={"Accept": "application/json"})
            document = response.json() if response.status_code == 200 else None
        except (ModuleUnreachable, ValueError) as exc:
            self.report.notes.append(f"not fuzzed: the module's /openapi.json could not be read: {exc}")
            return None
        if not isinstance(document, dict):
            self.report.notes.append(
                f"not fuzzed: the module's /openapi.json answered HTTP {response.status_code} without a JSON object"
            )
            return None
        return document

    def _select(self, schema: Any) -> Iterator[Operation]:
        mandated = self.ctx.mandate["paths"]
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                self.report.notes.append(f"an operation of the module's document cannot be fuzzed: {result.err()}")
                continue
            operation: Operation = result.ok()
            if operation.path not in mandated:
                self.report.skipped[operation.label] = f"not an operation of the {self.ctx.collection} mandate"
            elif self.ctx.read_only and operation.method.upper() != "GET":
                self.report.skipped[operation.label] = "the run is read-only (--fixture): no writes"
            else:
                yield operation

    def _fuzz(self, operation: Operation, mode: GenerationMode, done: FuzzOperation, session: Any) -> None:
        probe = self._probe(operation, done, session)
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = strategy.map(self._aligned)

        @settings(
            max_examples=self.settings.examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=strategy)
        def examples(case: Example) -> None:
            probe(case)

        try:
            examples()
        except Unsatisfiable:
            # nothing schema-invalid can be sent to this operation (an unconstrained path parameter, say)
            if mode is not GenerationMode.NEGATIVE:
                self.report.notes.append(f"{operation.label}: Schemathesis could not generate a {mode.value} request")
        except Exception as exc:
            self.report.notes.append(f"{operation.label} ({mode.value}): Schemathesis stopped: {_where(exc)}")

    def _aligned(self, case: Example) -> Example:
        """A valid entity's id names its city, one of the token's (rules no JSON Schema states): make it so.

        Without this nearly every generated write is refused with 403 or 422 and the module's write path, and
        the reads of what it wrote, are never exercised. The local id gets :data:`LOCAL_PREFIX`.
        """
        body: Any = case.body
        type_name = self.ctx.profile.type_name
        entity_id = body.get("id") if isinstance(body, dict) and body.get("type") == type_name else None
        parts = entity_id.split(":", 4) if isinstance(entity_id, str) else []
        if len(parts) != 5:
            return case
        local = (LOCAL_PREFIX + parts[4])[:128]
        body["id"], body["city"] = f"urn:ngsi-ld:{type_name}:{self.ctx.city}:{local}", self.ctx.city
        if isinstance(case.path_parameters, dict) and "id" in case.path_parameters:
            case.path_parameters["id"] = body["id"]
        return case

    def _probe(self, operation: Operation, done: FuzzOperation, session: Any) -> Callable[[Example], None]:
        def probe(case: Example) -> None:
            if time.perf_counter() > self.deadline:
                return  # out of time: the remaining examples are drawn but no longer sent
            done.requests += 1
            try:
                response = case.call(
                    base_url=self.base_url, session=session, headers=self.headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                done.statuses["no answer"] = done.statuses.get("no answer", 0) + 1
                self._found(case, "no_answer", "No answer", f"{type(exc).__name__}: {exc}", None)
                return
            status = response.status_code
            done.statuses[str(status)] = done.statuses.get(str(status), 0) + 1
            if case.method.upper() in WRITES and 200 <= status < 300:
                self._remember(case, response)
            for check in self.checks if status < 500 else self.checks[:1]:
                try:
                    case.validate_response(response, checks=[check], headers=self.headers)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        self._found(case, check.__name__, failure.title, failure.message, status)

        return probe

    def _found(self, case: Example, check: str, title: str, message: str, status: int | None) -> None:
        key = (case.operation.label, check, title)
        if key in self.seen:
            return
        self.seen.add(key)
        # Schemathesis filters the token out; redacting again is the suite's own guarantee. The reader then
        # supplies a token of their own, so the command runs as it is in a shell once TOKEN is set.
        curl = redact_text(case.as_curl_command(headers=self.headers, base_url=self.base_url).split("\n\n")[0])
        curl = curl.replace("'Authorization: [Filtered]'", '"Authorization: Bearer $TOKEN"')
        text = redact_text(" ".join(message.split()))
        self.report.findings.append(
            FuzzFinding(
                operation=case.operation.label,
                check=check,
                title=title,
                message=text[:MESSAGE_EXCERPT] + ("…" if len(text) > MESSAGE_EXCERPT else ""),
                status=status,
                curl=curl,
            )
        )

    def _remember(self, case: Example, response: Response) -> None:
        """Note the id of an entity a write may have created, from the answer, the request body or the path."""
        try:
            answer = response.json()
        except ValueError:
            answer = None
        for source in (answer, case.body, case.path_parameters):
            entity_id = source.get("id") if isinstance(source, dict) else None
            if isinstance(entity_id, str):
                self.created.add(entity_id)
                return

    def _clean_up(self) -> None:
        if not self.created:
            return
        token = self.ctx.token()
        left = []
        for entity_id in sorted(self.created):
            try:
                response = self.ctx.send("DELETE", self.ctx.entity_path(entity_id), token=token)
            except ModuleUnreachable:
                left.append(entity_id)
                continue
            if response.status_code not in (200, 204, 404):
                left.append(entity_id)
        self.report.notes.append(f"deleted {len(self.created) - len(left)} entities the fuzzer created")
        if left:
            self.report.notes.append(f"clean-up could not delete {len(left)} entities: {', '.join(left[:10])}")
