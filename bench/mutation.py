"""Mutation testing of the reference vendor module: the conformance suite's kill rate.

    .venv/bin/python bench/mutation.py                 # every mutant, 2 workers (about 10-15 min on 2 cores)
    .venv/bin/python bench/mutation.py --quick         # every 5th mutant (--every N: every Nth)
    .venv/bin/python bench/mutation.py --only auth.py --workers 1

Each mutant of ``examples/vendor_module`` (see :mod:`conformance.mutation` for the operators) is loaded in a
forked child, served on a free port, and run through the full service-requests profile with ``fail_fast``. It is
killed when the run is not certified (a MUST failed or went untested) or a SHOULD test failed. The unmutated module
runs first and must be certified, or the figures would mean nothing. Prints the kill rate over the mutants that
are not known equivalents (``EQUIVALENT``, each with its reason), and every surviving mutant.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.issuer import SuiteIssuer  # noqa: E402 -- after the path is set
from conformance.mutation import EQUIVALENT, UNREACHED, Mutant, generate, install  # noqa: E402
from conformance.results import Status  # noqa: E402
from conformance.runner import RunOptions, run  # noqa: E402
from conformance.serving import serve_app  # noqa: E402

FOLDER = ROOT / "examples" / "vendor_module"
AUDIENCE = "https://module.example.kz/api/v1"
MUTANT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    key: str
    killed: bool
    how: str
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(mutant: Mutant | None, state_dir: str) -> Outcome:
    """In a forked child: load the (mutated) module, serve it, run the suite against it."""
    # A mutant's crashes are what the suite must catch, not the bench's output: no logging at all in the child
    # (a mutant may even rename the module's logger, so disabling one logger by name is not enough).
    logging.disable(logging.CRITICAL)
    started = time.perf_counter()
    key = mutant.key if mutant else "reference"
    install(FOLDER, mutant)
    try:
        from examples.vendor_module import create_app  # noqa: PLC0415 -- imported anew, mutated, per child

        issuer = f"http://127.0.0.1:{_free_port()}"
        app = create_app(issuer, f"{issuer}/oauth/jwks", AUDIENCE)
        with serve_app(app, "127.0.0.1", 0) as base_url:
            options = RunOptions(
                profile="service-requests",
                base_url=base_url,
                audience=AUDIENCE,
                issuer_url=issuer,
                state_dir=Path(state_dir),
                timeout=5.0,
                fail_fast=mutant is not None,
            )
            report = run(options)
    except Exception as exc:  # a mutant that cannot even start is killed by any suite
        return Outcome(key, True, f"does not start: {type(exc).__name__}: {exc}"[:160], time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    if report.verdict != "certified":
        first = next((r for r in report.results if r.blocking or r.status is Status.ERROR), None)
        how = f"{report.verdict}: {first.test_id} ({first.status})" if first else report.verdict
        return Outcome(key, True, how, elapsed)
    if not report.module.name or not report.module.version:
        return Outcome(key, True, "no certificate: the module names itself with the mandate's info", elapsed)
    should = [r.test_id for r in report.results if r.status is Status.FAIL]
    if should:
        return Outcome(key, True, f"SHOULD failed: {should[0]}", elapsed)
    return Outcome(key, False, "certified", elapsed)


def warm_up() -> None:
    """Load what every run needs (catalogue, plan, invalid cases, mandate) once, before the children fork."""
    from conformance.checks import planned_tests  # noqa: PLC0415
    from conformance.requirements import Catalogue  # noqa: PLC0415
    from schemas import SchemaRegistry  # noqa: PLC0415

    Catalogue.load()
    planned_tests(SchemaRegistry.load().get("service-requests"))


def _child(arguments: tuple[Mutant | None, str]) -> Outcome:
    return _run(*arguments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every 5th mutant only (unless --every says otherwise)")
    parser.add_argument("--every", type=int, help="every Nth mutant only (a systematic sample; default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="mutate this file only (e.g. auth.py)")
    parser.add_argument(
        "--match", action="append", help="only mutants whose key contains this text (repeatable; to re-run survivors)"
    )
    arguments = parser.parse_args()

    mutants = [m for m in generate(FOLDER) if not arguments.only or m.file == arguments.only]
    mutants = [m for m in mutants if not arguments.match or any(text in m.key for text in arguments.match)]
    every = max(1, arguments.every or (5 if arguments.quick else 1))
    mutants = mutants[::every]
    import examples.vendor_module.app  # noqa: F401, PLC0415 -- FastAPI and friends, imported once before the forks

    warm_up()
    state_dir = tempfile.mkdtemp(prefix="qala-mutation-")
    SuiteIssuer.from_state_dir(Path(state_dir))  # one issuer key for every child
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(arguments.workers, maxtasksperchild=1) as pool:
        baseline = pool.apply_async(_child, ((None, state_dir),)).get(MUTANT_TIMEOUT)
        print(f"reference module: {baseline.how} in {baseline.seconds:.1f} s", flush=True)
        if baseline.killed:
            print("the unmutated module is not certified: fix that first", file=sys.stderr)
            return 2
        pending = [(m, pool.apply_async(_child, ((m, state_dir),))) for m in mutants]
        outcomes: list[tuple[Mutant, Outcome]] = []
        for number, (mutant, result) in enumerate(pending, start=1):
            try:
                outcome = result.get(MUTANT_TIMEOUT)
            except multiprocessing.TimeoutError:
                outcome = Outcome(mutant.key, True, f"timed out after {MUTANT_TIMEOUT:.0f} s", MUTANT_TIMEOUT)
            outcomes.append((mutant, outcome))
            mark = "killed  " if outcome.killed else "SURVIVED"
            print(f"[{number:3}/{len(pending)}] {mark} {mutant.describe()}  [{outcome.how}]", flush=True)
    wall = time.perf_counter() - started

    survivors = [m for m, o in outcomes if not o.killed]
    equivalent = [m for m in survivors if m.key in EQUIVALENT]
    unreached = [m for m in survivors if m.key in UNREACHED]
    gaps = [m for m in survivors if m.key not in EQUIVALENT and m.key not in UNREACHED]
    killed = len(outcomes) - len(survivors)
    relevant = len(outcomes) - len(equivalent)
    print()
    print(f"mutants: {len(outcomes)} ({f'every {every}th, ' if every > 1 else ''}{os.cpu_count()} CPUs, "
          f"{arguments.workers} workers, wall {wall:.0f} s, median "
          f"{sorted(o.seconds for _, o in outcomes)[len(outcomes) // 2]:.1f} s per mutant)")  # fmt: skip
    print(
        f"killed: {killed}; survived: {len(survivors)} ({len(equivalent)} known equivalent, {len(unreached)} real "
        f"but unreached by the suite's data, {len(gaps)} unexplained)"
    )
    rate = killed / relevant if relevant else 1.0
    print(f"kill rate over non-equivalent mutants: {killed}/{relevant} = {rate:.1%} (target 95%)")
    if equivalent:
        print("\nequivalent survivors:")
        for mutant in equivalent:
            print(f"  {mutant.describe()}\n      why: {EQUIVALENT[mutant.key]}")
    if unreached:
        print("\nsurvivors the suite's data does not reach (counted as survivors):")
        for mutant in unreached:
            print(f"  {mutant.describe()}\n      why: {UNREACHED[mutant.key]}")
    if gaps:
        print("\nunexplained survivors (gaps in the suite):")
        for mutant in gaps:
            print(f"  {mutant.describe()}\n      key: {mutant.key}")
    return 0 if rate >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
