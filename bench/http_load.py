"""Benchmark the hub's hottest HTTP paths against bare FastAPI endpoints, driven by wrk, in one run.

Every server is ``python -m uvicorn <app> --factory`` with the hub's settings (one process, 127.0.0.1, warning
log level, no access log), started as ``bench/exchange.py`` starts them. The load generator is wrk (a C program,
Debian's ``wrk`` package), not Python: a Python client saturates long before a bare uvicorn endpoint does, and
then measures itself. Three scenarios, each the same request sent to a bare endpoint and to the hub:

get     ``GET /api/v1/service-requests/<id>`` with a bearer token. The hub verifies the token, applies the rate
        limit (too high to bite), reads the entity and redacts its personal fields; the bare endpoint looks the
        same public view up in a dict and serialises it.
post    ``POST /api/v1/service-requests`` of the schema's example ServiceRequest, a new id per request (a Lua
        counter with the wrk thread's number and a tag per run). The hub validates, stores and audits it in one
        transaction and answers 201 with the entity; the bare endpoint parses the JSON and answers 201.
list    ``GET /api/v1/service-requests?city=astana&limit=100`` over the entities seeded (through the hub's own
        batch endpoint) and those the post scenario stored. The bare endpoint serialises 100 stored objects.

The bare endpoints serialise with orjson, as the hub may: the ceiling is the framework plus the cheapest
serialisation the project has, so a hub cannot look closer to it just by swapping its JSON library. Before
measuring, one request of each scenario goes to both servers and their answers are compared.

For each round, wrk runs against the bare server and then the hub (rounds interleaved). Printed per server:
requests/s at saturation and the server's CPU-seconds per request (utime + stime from ``/proc`` of the uvicorn
process and any children, before and after the wrk run), and the ratios hub/bare of requests/s and bare/hub of
CPU per request. The headline is the CPU-cost ratio: it holds even when other jobs take CPU from the server, as
they do on a shared two-core machine. wrk's own CPU share is printed beside it, and the server's: wrk far below
one core and the server near one core mean the server, not the load generator, was the limit. With two or more
CPUs, the server is pinned to one CPU and wrk to another (``taskset``). On SQLite the database runs inside the hub's
process and its work is in the hub's figure; PostgreSQL's own processes are not counted.

Usage::

    .venv/bin/python bench/http_load.py             # the full run (~4-5 minutes)
    .venv/bin/python bench/http_load.py --quick     # ~1-2 minutes
    .venv/bin/python bench/http_load.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
        # the hub on a throwaway qala_bench_* database on that server, dropped at the end
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/http_load.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path before anything imports
# them, and put the clone on it (at the end) for `bench.exchange`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from bench.exchange import EXAMPLE, Server, bearer, hub_env, post_batch, register, start_hub  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

COLLECTION = "/api/v1/service-requests"
LIST_PATH = f"{COLLECTION}?city=astana&limit=100"
SEED_ENV = "QALA_BENCH_SEEDED"
TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = {"get": 0.5, "post": 0.4, "list": 0.25}


# -- what both servers hold -----------------------------------------------------------------------------------


def seed_entity(number: int) -> dict[str, Any]:
    """The ``number``-th seeded ServiceRequest: the schema's example with its own id, request id and date."""
    local = f"L{number:06d}"
    return {
        **EXAMPLE,
        "id": f"urn:ngsi-ld:ServiceRequest:astana:{local}",
        "serviceRequestId": local,
        "dateModified": f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}T09:{number % 60:02d}:07+05:00",
    }


def bare_app() -> FastAPI:
    """The ceiling: FastAPI with the three endpoints doing the minimum, holding the public view of the seeds.

    No authentication, no database, no audit: a dict look-up (get), a slice (list), parsing the body (post)."""
    schema = SchemaRegistry.load().get("service-requests")
    seeded = [schema.redact(seed_entity(n)) for n in range(int(os.environ.get(SEED_ENV, "0")))]
    by_id = {entity["id"]: entity for entity in seeded}
    app = FastAPI()

    def json_response(value: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(value), status_code=status, media_type="application/json")

    @app.get(COLLECTION)
    async def list_entities(limit: int = 100) -> Response:
        return json_response({"items": seeded[:limit], "next": None})

    @app.post(COLLECTION)
    async def create(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(status_code=201)

    @app.get(COLLECTION + "/{entity_id:path}")
    async def get_entity(entity_id: str) -> Response:
        entity = by_id.get(entity_id)
        return json_response(entity) if entity is not None else Response(status_code=404)

    return app


# -- wrk --------------------------------------------------------------------------------------------------------


def find_wrk() -> tuple[str, str]:
    """The wrk executable and its version line; exit 2 with the command that installs it when there is none."""
    path = shutil.which("wrk")
    if path is None:
        print("wrk not found: this bench drives the servers with wrk. Install it with: apt-get install -y wrk")
        raise SystemExit(2)
    # `wrk --version` prints its banner and usage and exits 1; the first line names the version.
    banner = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return path, (banner.stdout or banner.stderr).splitlines()[0].strip()


def lua_string(data: str | bytes) -> str:
    """A Lua string literal of ``data`` (bytes kept exactly: everything but plain printable ASCII escaped)."""
    raw = data.encode() if isinstance(data, str) else data
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in raw) + '"'


DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "@@wrk {\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,\\"socket\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
"""Every script reports in one parseable line: requests, duration, non-2xx/3xx answers, socket errors, latency."""


def get_script(headers: dict[str, str]) -> str:
    """A fixed request: wrk builds it once and sends it again and again."""
    lines = [f"wrk.headers[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items()]
    return "\n".join(lines) + DONE


def post_script(path: str, headers: dict[str, str], head: bytes, tail: bytes, tag: str) -> str:
    """A POST per request whose body is ``head + id + tail``, the id unique per run, thread and request."""
    table = ", ".join(f"[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items())
    return (
        f"""
local head, tail, tag = {lua_string(head)}, {lua_string(tail)}, {lua_string(tag)}
local headers = {{{table}}}
local counter, number = 0, 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

function request()
  counter = counter + 1
  return wrk.format("POST", {lua_string(path)}, headers, head .. tag .. "-" .. number .. "-" .. counter .. tail)
end
"""
        + DONE
    )


@dataclass
class Run:
    """One wrk run against one server."""

    requests: int
    seconds: float
    failed: int
    server_cpu: float
    """CPU-seconds the server used during the run."""
    wrk_cpu: float
    """CPU-seconds wrk used."""
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per request: its cost, whatever else competed for the core."""
        return self.server_cpu / self.requests * 1000 if self.requests else float("nan")

    @property
    def server_share(self) -> float:
        return self.server_cpu / self.seconds

    @property
    def wrk_share(self) -> float:
        return self.wrk_cpu / self.seconds


def process_cpu(pid: int) -> float:
    """utime + stime, in seconds, of process ``pid`` (all its threads) and of its live child processes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    total = (int(stat[11]) + int(stat[12])) / TICKS
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            total += sum(process_cpu(int(child)) for child in task.read_text().split())
    return total


@dataclass
class Loadgen:
    """wrk, its settings, and the CPUs it and the servers are pinned to (None: not pinned)."""

    wrk: str
    version: str
    connections: int
    scratch: Path
    wrk_cpu: int | None
    server_cpu: int | None

    def pin(self, server: Server) -> None:
        """Pin every thread of ``server`` (threads started later inherit it) to the servers' CPU."""
        if self.server_cpu is not None and server.process is not None:
            command = ["taskset", "-a", "-p", "-c", str(self.server_cpu), str(server.process.pid)]
            subprocess.run(command, check=True, capture_output=True)

    def run(self, server: Server, script: str, path: str, seconds: int) -> Run:
        """wrk against ``server`` for ``seconds`` with the Lua ``script``; the server's CPU measured around it."""
        if server.process is None:
            raise SystemExit("the server is not running")
        lua = self.scratch / f"wrk-{secrets.token_hex(4)}.lua"
        lua.write_text(script)
        command = [self.wrk, "-t1", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(lua)]
        if self.wrk_cpu is not None:
            command = ["taskset", "-c", str(self.wrk_cpu), *command]
        pid = server.process.pid
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = process_cpu(pid)
        done = subprocess.run([*command, server.base + path], capture_output=True, text=True, check=False)
        after = process_cpu(pid)
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        lua.unlink()
        report = re.search(r"^@@wrk (\{.*\})$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or report is None:
            raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
        figures = json.loads(report.group(1))
        wrk_cpu = (used.ru_utime - children.ru_utime) + (used.ru_stime - children.ru_stime)
        return Run(
            requests=figures["requests"],
            seconds=figures["duration_us"] / 1e6,
            failed=figures["status"] + figures["socket"],
            server_cpu=after - before,
            wrk_cpu=wrk_cpu,
            p50_ms=figures["p50_us"] / 1000,
            p99_ms=figures["p99_us"] / 1000,
        )


def pinning() -> tuple[int | None, int | None]:
    """(wrk's CPU, the servers' CPU): the first and last this process may use, when taskset and two CPUs exist."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2:
        return None, None
    for cpu in (cpus[0], cpus[-1]):  # a container may forbid it
        if subprocess.run(["taskset", "-c", str(cpu), "true"], capture_output=True, check=False).returncode != 0:
            return None, None
    return cpus[0], cpus[-1]


# -- scenarios ----------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One request shape, sent alike to the bare server (which ignores the token) and to the hub."""

    name: str
    label: str
    path: str
    status: int
    script: Callable[[], str]
    """The wrk script of one run: called per run, so each POST run has ids of its own."""


def scenarios(headers: dict[str, str], seeded: int) -> list[Scenario]:
    token = {"Authorization": headers["Authorization"]}
    item = f"{COLLECTION}/{quote(seed_entity(seeded // 2)['id'], safe='')}"
    posted = {**token, "Content-Type": "application/json"}
    head, tail = orjson.dumps({**EXAMPLE, "id": "urn:ngsi-ld:ServiceRequest:astana:@@ID@@"}).split(b"@@ID@@")

    def posting() -> str:
        return post_script(COLLECTION, posted, head, tail, f"W{secrets.token_hex(4)}")

    return [
        Scenario("get", "authenticated GET of one entity", item, 200, lambda: get_script(token)),
        Scenario("post", "authenticated, validated, stored and audited POST", COLLECTION, 201, posting),
        Scenario("list", "list page of 100, city=astana&limit=100", LIST_PATH, 200, lambda: get_script(token)),
    ]


def preflight(bare: Server, hub: Server, headers: dict[str, str], scenario: Scenario) -> None:
    """One request of ``scenario`` to each server: the expected status, and the same entities in both answers."""
    answers = []
    for server in (bare, hub):
        if scenario.name == "post":
            local = f"P{secrets.token_hex(4)}"
            body = orjson.dumps({**EXAMPLE, "id": f"urn:ngsi-ld:ServiceRequest:astana:{local}"})
            sent = {**headers, "Content-Type": "application/json"}
            response = httpx.post(server.base + scenario.path, content=body, headers=sent, timeout=30)
        else:
            response = httpx.get(server.base + scenario.path, headers=headers, timeout=30)
        if response.status_code != scenario.status:
            raise SystemExit(f"{scenario.name}: {server.target} answered {response.status_code}: {response.text[:300]}")
        answers.append(response.json() if scenario.name != "post" else None)
    if scenario.name == "list":
        answers = [answer["items"] for answer in answers]  # the hub's page carries a next link, the bare one none
    if answers[0] != answers[1]:
        raise SystemExit(f"{scenario.name}: the bare server and the hub answer with different entities")


@dataclass
class Round:
    bare: Run
    hub: Run

    @property
    def rate_ratio(self) -> float:
        return self.hub.rate / self.bare.rate

    @property
    def cost_ratio(self) -> float:
        return self.bare.cpu_ms / self.hub.cpu_ms


def describe(run: Run) -> str:
    return (
        f"{run.rate:6.0f}/s {run.cpu_ms:6.3f} ms/req (server {run.server_share:4.0%}, wrk {run.wrk_share:4.0%}, "
        f"p99 {run.p99_ms:5.1f} ms)"
    )


def measure(loadgen: Loadgen, bare: Server, hub: Server, scenario: Scenario, args: argparse.Namespace) -> list[Round]:
    if args.warmup:
        for server in (bare, hub):
            loadgen.run(server, scenario.script(), scenario.path, args.warmup)
    rounds = []
    for number in range(1, args.rounds + 1):
        measured = Round(
            *(loadgen.run(server, scenario.script(), scenario.path, args.seconds) for server in (bare, hub))
        )
        rounds.append(measured)
        failed = measured.bare.failed + measured.hub.failed
        print(
            f"  round {number}  bare {describe(measured.bare)}  hub {describe(measured.hub)}  "
            f"req/s hub/bare {measured.rate_ratio:.2f}  cost bare/hub {measured.cost_ratio:.2f}"
            + (f"  [{failed} FAILED: non-2xx/3xx or socket errors]" if failed else "")
        )
    return rounds


@dataclass
class Result:
    scenario: Scenario
    rounds: list[Round]

    def median(self, value: Callable[[Round], float]) -> float:
        return statistics.median(value(r) for r in self.rounds)

    @property
    def failed(self) -> int:
        return sum(r.bare.failed + r.hub.failed for r in self.rounds)


def saturation(result: Result) -> str:
    """Whether the server (not wrk) was the limit, from the median CPU shares of both during the bare runs."""
    server = result.median(lambda r: r.bare.server_share)
    wrk = result.median(lambda r: r.bare.wrk_share)
    if wrk >= 0.8:
        verdict = "wrk near a full core: it may be the limit; the CPU-cost ratio still holds"
    elif server < 0.85:
        verdict = "the server below a full core: other jobs took CPU; the CPU-cost ratio still holds"
    else:
        verdict = "the server was the limit"
    return f"bare run: server {server:.0%} of a core, wrk {wrk:.0%}: {verdict}"


def summary(results: list[Result], database: str) -> None:
    print(f"\nSummary (medians over interleaved rounds; hub on {database})")
    print(
        f"  {'scenario':<8} {'bare req/s':>10} {'hub req/s':>10} {'hub/bare':>8} {'bare ms/req':>11} "
        f"{'hub ms/req':>10} {'CPU cost ratio bare/hub':>23} {'target':>7}  met"
    )
    for result in results:
        name = result.scenario.name
        cost = result.median(lambda r: r.cost_ratio)
        print(
            f"  {name:<8} {result.median(lambda r: r.bare.rate):>10.0f} {result.median(lambda r: r.hub.rate):>10.0f} "
            f"{result.median(lambda r: r.rate_ratio):>8.2f} {result.median(lambda r: r.bare.cpu_ms):>11.3f} "
            f"{result.median(lambda r: r.hub.cpu_ms):>10.3f} {cost:>23.2f} {'>= ' + str(TARGETS[name]):>7}  "
            f"{'yes' if cost >= TARGETS[name] else 'NO'}"
        )


# -- the run ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A fresh ``qala_bench_<random>`` database on the PostgreSQL server of ``admin_url``; dropped on exit."""
    name = f"qala_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def seed(hub: Server, headers: dict[str, str], count: int) -> None:
    rows = [(entity["id"], orjson.dumps(entity)) for entity in map(seed_entity, range(count))]
    for start in range(0, count, 5000):
        post_batch(hub, headers, rows[start : start + 5000])


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> list[Result]:
    wrk, version = find_wrk()
    wrk_cpu, server_cpu = pinning()
    loadgen = Loadgen(wrk, version, args.connections, scratch, wrk_cpu, server_cpu)
    print(f"load generator: {wrk} ({version}), 1 thread, {args.connections} connections")
    if server_cpu is None:
        print("not pinned: taskset or a second CPU is missing; wrk and the servers share the CPUs")
    else:
        print(f"pinned with taskset: every server thread to CPU {server_cpu}, wrk to CPU {wrk_cpu}")
    if args.database_url:
        database_url = stack.enter_context(throwaway_database(args.database_url))
        database = f"PostgreSQL, throwaway database {database_url.rsplit('/', 1)[1]}"
    else:
        database_url, database = f"sqlite:///{scratch}/hub.db", "SQLite in a temp dir"
    client = register(database_url)
    hub = start_hub(stack, database_url)
    headers = bearer(hub, client)
    loadgen.pin(hub)
    started = time.perf_counter()
    seed(hub, headers, args.entities)
    print(f"hub on {database}: {args.entities:,} ServiceRequests seeded in {time.perf_counter() - started:.1f} s")
    bare = Server(
        "bench.http_load:bare_app", {**hub_env(database_url), SEED_ENV: str(args.entities)}, app_dir=str(ROOT)
    )
    stack.callback(bare.stop)
    bare.start("/docs")
    loadgen.pin(bare)
    pids = [server.process.pid if server.process else "?" for server in (bare, hub)]
    print(f"servers: bare pid {pids[0]}, hub pid {pids[1]}")
    print(f"{args.rounds} interleaved rounds of {args.seconds} s per server, {args.warmup} s warm-up each")
    results = []
    for scenario in scenarios(headers, args.entities):
        if scenario.name not in args.scenarios.split(","):
            continue
        preflight(bare, hub, headers, scenario)
        print(f"\n[{scenario.name}] {scenario.label}: {scenario.path[:90]}")
        result = Result(scenario, measure(loadgen, bare, hub, scenario, args))
        print(f"  {saturation(result)}")
        print(
            f"  median req/s hub/bare {result.median(lambda r: r.rate_ratio):.2f}, "
            f"CPU cost ratio bare/hub {result.median(lambda r: r.cost_ratio):.2f} (target >= {TARGETS[scenario.name]})"
        )
        results.append(result)
    summary(results, database)
    return results


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (~1-2 minutes)")
    parser.add_argument("--scenarios", default="get,post,list", help="comma-separated: get, post, list")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per scenario (default 5)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per server and scenario")
    parser.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    parser.add_argument("--entities", type=int, default=None, help="ServiceRequests seeded before (default 5000)")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server's URL: the hub runs on a throwaway database there"
    )
    args = parser.parse_args()
    defaults = (
        {"rounds": 2, "seconds": 3, "warmup": 1, "entities": 2000}
        if args.quick
        else {"rounds": 5, "seconds": 5, "warmup": 2, "entities": 5000}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures appear as rounds finish
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="qala-bench-http-") as scratch, contextlib.ExitStack() as stack:
            results = run(args, Path(scratch), stack)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, temp files and any PostgreSQL database removed", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    failed = sum(result.failed for result in results)
    if failed:
        print(f"{failed} requests FAILED (non-2xx/3xx or socket errors): the figures above are not valid")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
