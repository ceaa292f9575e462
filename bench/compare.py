"""Compare the hub's CPU per request at a git revision against the working tree, both under load at the same time.

``bench/http_load.py`` sets the hub against a bare endpoint, one after the other; on a shared machine whose speed
drifts by a fifth within a minute, two runs of the same code differ by more than most changes save. To tell whether
a change made the hub cheaper, this runs the two hubs side by side instead: the revision's code (a temporary ``git
worktree``, ``--base``, default ``HEAD``) and the working tree's, each on a database of its own seeded alike,
both pinned to the same CPU, with two wrk processes driving them at once (``--connections`` each). Whatever slows
the CPU slows both; each server's CPU-seconds per request come from its own ``/proc`` counters. Each round prints
base/working (above 1: the working tree is cheaper); the summary gives the medians. The scenarios are
``bench/http_load.py``'s (get, post, list of ServiceRequests, the same seeds), on SQLite or, with
``--database-url``, on throwaway PostgreSQL databases.

Usage::

    .venv/bin/python bench/compare.py                       # HEAD against the working tree, on SQLite
    .venv/bin/python bench/compare.py --base HEAD~3 --scenarios get,list \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres

Each hub migrates its own database, so the revisions may differ in their migrations.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]  # as bench/http_load.py
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import Server, bearer, hub_database, hub_env, register  # noqa: E402
from bench.harness.wrk import Loadgen, Run, Scenario, open_loadgen  # noqa: E402
from bench.http_load import scenarios, seed  # noqa: E402


def worktree(stack: contextlib.ExitStack, scratch: Path, revision: str) -> Path:
    """A detached ``git worktree`` of ``revision`` in ``scratch``, removed when ``stack`` closes."""
    path = scratch / "base"
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"git worktree add {revision}: {done.stderr.strip()}")
    stack.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
    return path


def start(
    stack: contextlib.ExitStack, folder: Path, args: argparse.Namespace, app_dir: Path
) -> tuple[Server, list[Scenario], str]:
    """The hub with its code from ``app_dir`` (uvicorn puts it first on the path) on a database of its own (on
    SQLite two hubs on one file would wait for each other's write lock), seeded alike; its scenarios (each with a
    token of its own) and the database's description."""
    folder.mkdir()
    database_url, database = hub_database(stack, folder, args.database_url)
    client = register(database_url)
    hub = Server("gateway.app:app_from_environment", hub_env(database_url), str(app_dir))
    hub.env["QALA_ISSUER"] = hub.base
    stack.callback(hub.stop)
    hub.start("/oauth/jwks")
    headers = bearer(hub, client)
    seed(hub, headers, args.entities)
    return hub, scenarios(headers, args.entities), database


def side_by_side(
    loadgen: Loadgen, pool: ThreadPoolExecutor, runs: list[tuple[Server, Scenario]], seconds: float
) -> list[Run]:
    """One wrk run of each server's scenario, at the same time."""
    futures = [pool.submit(loadgen.run, server, scenario.script(), scenario.path, seconds) for server, scenario in runs]
    return [future.result() for future in futures]


def compare(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> int:
    loadgen = open_loadgen(args.connections, scratch)
    base_dir = worktree(stack, scratch, args.base)
    working, working_scenarios, database = start(stack, scratch / "working-db", args, ROOT)
    base, base_scenarios, _ = start(stack, scratch / "base-db", args, base_dir)
    for hub in (base, working):
        loadgen.pin(hub)
    revision = subprocess.run(
        ["git", "-C", str(base_dir), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    print(f"base {args.base} ({revision.stdout.strip()}) against the working tree, each on {database}")
    print(f"{args.rounds} rounds of {args.seconds} s, both hubs loaded at once, {args.connections} connections each")
    failed = 0
    summary = []
    with ThreadPoolExecutor(2) as pool:
        for scenario, theirs in zip(working_scenarios, base_scenarios, strict=True):
            if scenario.name not in args.scenarios.split(","):
                continue
            runs = [(base, theirs), (working, scenario)]
            side_by_side(loadgen, pool, runs, args.warmup)
            ratios, costs = [], []
            print(f"\n[{scenario.name}] {scenario.label}")
            for number in range(1, args.rounds + 1):
                then, now = side_by_side(loadgen, pool, runs, args.seconds)
                failed += then.failed + now.failed
                ratios.append(then.cpu_ms / now.cpu_ms)
                costs.append((then.cpu_ms, now.cpu_ms))
                print(
                    f"  round {number}  base {then.rate:6.0f}/s {then.cpu_ms:.3f} ms/req  working {now.rate:6.0f}/s "
                    f"{now.cpu_ms:.3f} ms/req  base/working {ratios[-1]:.3f}"
                )
            base_ms = statistics.median(cost[0] for cost in costs)
            working_ms = statistics.median(cost[1] for cost in costs)
            spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
            summary.append((scenario.name, base_ms, working_ms, statistics.median(ratios), spread))
    print("\nSummary (medians; base/working above 1: the working tree costs less CPU per request)")
    print(f"  {'scenario':8} {'base ms/req':>11} {'working ms/req':>14} {'ratio base/working':>18} {'rounds':>13}")
    for name, base_ms, working_ms, ratio, spread in summary:
        print(f"  {name:8} {base_ms:11.3f} {working_ms:14.3f} {ratio:18.3f} {spread:>13}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (~1 minute)")
    parser.add_argument("--scenarios", default="get,post,list", help="comma-separated: get, post, list")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per scenario (default 6)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per round (default 4)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections per hub")
    parser.add_argument("--entities", type=int, default=None, help="ServiceRequests seeded before (default 2000)")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server's URL: the hubs run on a throwaway database there"
    )
    args = parser.parse_args()
    defaults = {"rounds": 3, "seconds": 2, "warmup": 1} if args.quick else {"rounds": 6, "seconds": 4, "warmup": 2}
    fill_defaults(args, {**defaults, "entities": 2000})
    exit_if_failed(run_bench("compare", lambda scratch, stack: compare(args, scratch, stack)))


if __name__ == "__main__":
    main()
