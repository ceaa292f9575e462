"""Benchmark the hub's scale-out: requests/s of ``qala serve --workers 1`` and ``--workers 2`` on PostgreSQL with
Redis rate limits, driven by wrk, in one run.

Both hubs run at the same time on one throwaway ``qala_bench_*`` PostgreSQL database (dropped at the end), with
``QALA_REDIS_URL`` set so that every worker takes its rate limits from Redis (limits too high to bite, but each
request still makes the Redis round trip a real deployment makes), started exactly as an operator starts them:
``qala serve --workers N``. Rounds alternate between the two hubs (1, 2, 1, 2, ...); an idle hub costs nothing.

Scenarios (each the request bench/http_load.py measures against a bare endpoint):

get     authenticated ``GET /api/v1/service-requests/<id>`` of a seeded entity;
post    authenticated, validated, stored and audited ``POST /api/v1/service-requests``, a new id per request.

Printed per round and hub: requests/s, and the CPU each party spent per request (from ``/proc``): the hub (the
``qala serve`` process and its workers), PostgreSQL (every ``postgres`` process), Redis (``redis-server``) and
wrk; then the CPUs the machine left idle and those other jobs took (``/proc/stat``). A 2-worker hub well short of
two cores while CPUs sit idle is waiting for something (a lock, a round trip); with none idle it is starved, and
with other jobs taking CPUs the rates say little. For the 2-worker hub each worker's share of a core is printed
too: uvicorn's workers accept connections from one shared socket, and wrk's keep-alive connections, opened at once,
can land mostly on one of them, which then caps the hub at one core while the other idles. The headline is the
ratio of the 2-worker throughput to the 1-worker one (target >= 1.6).

On a machine of C CPUs the ratio has a ceiling that no hub change can lift: one worker is limited by its own core
(rate1 <= 1000 / hub_ms), two by every core (rate2 <= C * 1000 / (hub_ms + others_ms)), where others are the
database, Redis and the load generator sharing the same CPUs. The bench prints that ceiling,
``C * hub_ms / (hub_ms + others_ms)`` capped at 2, from the costs it measured in the same run: a ratio near it means
the hub scales and the machine is what stops it. wrk runs unpinned: on two CPUs there is no CPU to set apart.

Usage::

    .venv/bin/python bench/scaleout.py             # ~3 minutes
    .venv/bin/python bench/scaleout.py --quick     # ~1 minute
    .venv/bin/python bench/scaleout.py --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/scaleout.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path, and put the clone on it
# (at the end) for `bench.http_load`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from urllib.parse import quote  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import (  # noqa: E402
    EXAMPLE,
    PG_ADMIN_URL,
    TICKS,
    Server,
    bearer,
    child_pids,
    hub_env,
    own_cpu,
    post_batch,
    register,
    throwaway_database,
)
from bench.harness.wrk import Loadgen, Run, find_wrk, fixed_script, post_script  # noqa: E402
from bench.http_load import COLLECTION, seed_entity  # noqa: E402

TARGET = 1.6
REDIS_URL = "redis://127.0.0.1:6379/15"
QALA = Path(sys.executable).parent / "qala"


# -- the hubs ---------------------------------------------------------------------------------------------------


@dataclass
class ServedHub(Server):
    """``qala serve --workers N`` on a free loopback port, as an operator starts it (access log on, to nowhere)."""

    target: str = "qala serve"
    workers: int = 1

    def start(self, ready_path: str = "/oauth/jwks", timeout: float = 90.0) -> None:
        command = [str(QALA), "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.env["QALA_ISSUER"] = self.base
        out = subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, start_new_session=True, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"qala serve --workers {self.workers} exited with {self.process.returncode}")
            # Every worker up: uvicorn runs one worker in its own process, more as child processes.
            if self.workers == 1 or len(child_pids(self.pid)) >= self.workers:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(self.base + ready_path, timeout=1).status_code == 200:
                        return
            time.sleep(0.2)
        raise SystemExit(f"qala serve --workers {self.workers} did not start within {timeout:.0f} s")


def machine_cpu() -> float:
    """CPU seconds every process of the machine has used so far (``/proc/stat``: all but idle and I/O wait)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS


def cpu_of(pids: set[int]) -> dict[int, float]:
    """utime + stime, in seconds, of each process of ``pids`` that runs (not its children)."""
    return {pid: seconds for pid in pids if (seconds := own_cpu(pid)) is not None}


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings: a process new since ``before`` counts whole, one gone since counts 0."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass
class Backends:
    """Where PostgreSQL's and Redis's CPU time is read: the server processes that serve this bench."""

    database_url: str
    database: str
    redis_pid: int

    def postgres_pids(self) -> set[int]:
        """The backends connected to the bench's database and the server's own background processes."""
        query = (
            "SELECT pid FROM pg_stat_activity WHERE datname = %s OR (datname IS NULL AND backend_type <> "
            "'client backend')"
        )
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return {row[0] for row in connection.execute(query, (self.database,))} - {connection.info.backend_pid}


# -- measuring --------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One wrk run against one hub, with the CPU PostgreSQL and Redis spent meanwhile."""

    workers: int
    run: Run
    postgres_cpu: float
    redis_cpu: float
    machine_cpu: float
    """CPU seconds of every process of the machine during the run."""
    worker_cpu: list[float]
    """CPU seconds of each worker process of a hub of several, busiest first (empty for one worker)."""

    def per_request(self, cpu: float) -> float:
        """CPU milliseconds per request."""
        return cpu / self.run.requests * 1000 if self.run.requests else float("nan")

    @property
    def hub_ms(self) -> float:
        return self.run.cpu_ms

    @property
    def others_ms(self) -> float:
        return self.per_request(self.postgres_cpu + self.redis_cpu + self.run.wrk_cpu)

    @property
    def idle(self) -> float:
        """CPUs left idle during the run, on average: with some left, a hub short of its workers' CPUs is waiting,
        not starved."""
        return max(0.0, len(os.sched_getaffinity(0)) - self.machine_cpu / self.run.seconds)

    @property
    def strangers(self) -> float:
        """CPUs taken on average by processes that are not the bench's (another job on a shared machine)."""
        ours = self.run.server_cpu + self.postgres_cpu + self.redis_cpu + self.run.wrk_cpu
        return max(0.0, self.machine_cpu - ours) / self.run.seconds


def measured(loadgen: Loadgen, hub: ServedHub, backends: Backends, script: str, path: str, seconds: int) -> Measured:
    postgres = backends.postgres_pids()
    workers = set(child_pids(hub.pid)) if hub.workers > 1 else set()
    before = cpu_of(postgres), cpu_of({backends.redis_pid}), machine_cpu(), cpu_of(workers)
    run = loadgen.run(hub, script, path, seconds)
    after_machine, after_workers = machine_cpu(), cpu_of(workers)
    postgres |= backends.postgres_pids()  # a backend opened during the run: all its CPU is the run's
    after = cpu_of(postgres), cpu_of({backends.redis_pid})
    # uvicorn's supervisor has a helper child besides its workers: the busiest ``workers`` are the workers
    shares = sorted((after_workers[pid] - before[3].get(pid, 0.0) for pid in after_workers), reverse=True)
    shares = shares[: hub.workers]
    return Measured(
        hub.workers, run, used(before[0], after[0]), used(before[1], after[1]), after_machine - before[2], shares
    )


def describe(m: Measured) -> str:
    return (
        f"{m.workers} worker{'s' if m.workers > 1 else ' '} {m.run.rate:6.0f}/s  CPU ms/req: hub {m.hub_ms:5.3f}, "
        f"postgres {m.per_request(m.postgres_cpu):5.3f}, redis {m.per_request(m.redis_cpu):5.3f}, wrk "
        f"{m.per_request(m.run.wrk_cpu):5.3f}  (hub {m.run.server_share:4.0%} of a core, p99 {m.run.p99_ms:5.1f} ms; "
        f"CPUs idle {m.idle:3.1f}, other jobs {m.strangers:3.1f})"
        + (f"  workers {' / '.join(f'{cpu / m.run.seconds:.0%}' for cpu in m.worker_cpu)}" if m.worker_cpu else "")
        + (f"  [{m.run.failed} FAILED]" if m.run.failed else "")
    )


@dataclass
class Scenario:
    name: str
    label: str
    path: str
    script: Callable[[dict[str, str]], str]
    """The wrk script of one run with the given bearer token: called per run, so each POST run has its own ids."""


def scenarios(seeded: int) -> list[Scenario]:
    item = f"{COLLECTION}/{quote(seed_entity(seeded // 2)['id'], safe='')}"
    head, tail = orjson.dumps({**EXAMPLE, "id": "urn:ngsi-ld:ServiceRequest:astana:@@ID@@"}).split(b"@@ID@@")

    def posting(token: dict[str, str]) -> str:
        headers = {**token, "Content-Type": "application/json"}
        return post_script(COLLECTION, headers, head, tail, f"S{os.urandom(4).hex()}")

    return [
        Scenario("get", "authenticated GET of one entity", item, fixed_script),
        Scenario("post", "authenticated, validated, stored and audited POST", COLLECTION, posting),
    ]


def ceiling(runs: list[Measured]) -> float:
    """The ratio this machine allows from the costs measured: CPUs x hub / (hub + the others), at most 2."""
    cpus = len(os.sched_getaffinity(0))
    hub = statistics.median(m.hub_ms for m in runs)
    others = statistics.median(m.others_ms for m in runs)
    return min(2.0, cpus * hub / (hub + others))


def measure(
    loadgen: Loadgen,
    hubs: dict[int, tuple[ServedHub, dict[str, str]]],
    backends: Backends,
    scenario: Scenario,
    args: argparse.Namespace,
) -> tuple[list[float], list[Measured]]:
    def once(workers: int, seconds: int) -> Measured:
        hub, token = hubs[workers]
        return measured(loadgen, hub, backends, scenario.script(token), scenario.path, seconds)

    for workers in hubs:
        once(workers, args.warmup)
    ratios, runs = [], []
    for number in range(1, args.rounds + 1):
        one, two = once(1, args.seconds), once(2, args.seconds)
        runs += [one, two]
        ratios.append(two.run.rate / one.run.rate)
        print(f"  round {number}  {describe(one)}")
        print(f"           {describe(two)}  ratio 2-worker/1-worker {ratios[-1]:.2f}")
    return ratios, runs


# -- the run ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> int:
    """Measure and print; the number of requests that failed."""
    wrk, version = find_wrk()
    # Unpinned: with two workers the hub needs every CPU, and there is none to set wrk apart on.
    loadgen = Loadgen(wrk, version, args.connections, scratch, wrk_cpu=None, server_cpu=None)
    print(f"load generator: {wrk} ({version}), unpinned, {args.connections} connections; {os.cpu_count()} CPUs")
    database_url = stack.enter_context(throwaway_database(args.database_url))
    database = database_url.rsplit("/", 1)[1]
    limiter = redis.Redis.from_url(args.redis_url)
    try:
        redis_pid = int(limiter.info("server")["process_id"])
    except redis.RedisError as exc:
        raise SystemExit(f"cannot reach Redis at {args.redis_url}: {exc}") from exc
    finally:
        limiter.close()
    backends = Backends(database_url, database, redis_pid)
    client = register(database_url)
    env = {**hub_env(database_url), "QALA_REDIS_URL": args.redis_url}
    hubs = {workers: ServedHub(env=dict(env), workers=workers) for workers in (1, 2)}
    for hub in hubs.values():
        stack.callback(hub.stop)
        hub.start()
    # Each hub is its own issuer (QALA_ISSUER is its URL): a token is taken from the hub it is sent to.
    served = {workers: (hub, bearer(hub, client)) for workers, hub in hubs.items()}
    rows = [(entity["id"], orjson.dumps(entity)) for entity in map(seed_entity, range(args.entities))]
    for start in range(0, len(rows), 5000):
        post_batch(hubs[1], served[1][1], rows[start : start + 5000])
    print(
        f"hubs: `qala serve --workers 1` pid {hubs[1].pid}, `--workers 2` pid {hubs[2].pid}, on PostgreSQL "
        f"database {database} ({args.entities:,} ServiceRequests seeded), rate limits in Redis {args.redis_url}"
    )
    print(f"{args.rounds} alternating rounds of {args.seconds} s per hub, {args.warmup} s warm-up each")
    results = []
    for scenario in scenarios(args.entities):
        if scenario.name not in args.scenarios.split(","):
            continue
        print(f"\n[{scenario.name}] {scenario.label}: {scenario.path[:90]}")
        ratios, runs = measure(loadgen, served, backends, scenario, args)
        results.append((scenario, ratios, runs))
    print("\nSummary (medians over alternating rounds; PostgreSQL, Redis rate limits)")
    print(
        f"  {'scenario':<8} {'1 worker/s':>10} {'2 workers/s':>11} {'ratio':>6} {'target':>7}  met  "
        f"{'ceiling on this machine':>23}"
    )
    failed = 0
    for scenario, ratios, runs in results:
        one = statistics.median(m.run.rate for m in runs if m.workers == 1)
        two = statistics.median(m.run.rate for m in runs if m.workers == 2)
        ratio = statistics.median(ratios)
        failed += sum(m.run.failed for m in runs)
        print(
            f"  {scenario.name:<8} {one:>10.0f} {two:>11.0f} {ratio:>6.2f} {'>= ' + str(TARGET):>7}  "
            f"{'yes' if ratio >= TARGET else 'NO ':<3}  {ceiling([m for m in runs if m.workers == 2]):>23.2f}"
        )
    print(
        "  ceiling: CPUs x hub CPU / (hub + PostgreSQL + Redis + wrk CPU) per request of the 2-worker runs, at most 2"
    )
    strangers = statistics.median(m.strangers for _, _, runs in results for m in runs) if results else 0.0
    if strangers >= 0.2:
        print(
            f"  other jobs took {strangers:.1f} CPUs on average during the runs (median): the rates are low and the "
            "ratios noisy; compare runs of one bench, or rerun on a quiet machine"
        )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (~1 minute)")
    parser.add_argument("--scenarios", default="get,post", help="comma-separated: get, post")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per scenario (default 3)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per wrk run (default 8)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per hub and scenario")
    parser.add_argument("--connections", type=int, default=32, help="wrk's keep-alive connections")
    parser.add_argument("--entities", type=int, default=2000, help="ServiceRequests seeded before")
    parser.add_argument("--database-url", default=PG_ADMIN_URL, help="the PostgreSQL server (a throwaway database)")
    parser.add_argument("--redis-url", default=REDIS_URL, help="the Redis of the hubs' rate limits")
    args = parser.parse_args()
    defaults = {"rounds": 2, "seconds": 3, "warmup": 1} if args.quick else {"rounds": 3, "seconds": 8, "warmup": 3}
    fill_defaults(args, defaults)
    failed = run_bench("scaleout", lambda scratch, stack: run(args, scratch, stack))
    exit_if_failed(failed)


if __name__ == "__main__":
    main()
