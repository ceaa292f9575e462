"""wrk as the benches' load generator: Lua scripts, CPU pinning, and each server's own CPU counters.

A Python client saturates long before a bare uvicorn endpoint does, and then measures itself; wrk (a C program,
Debian's ``wrk`` package) does not. Each run reports the requests, the latency percentiles (from a Lua ``done``
hook, one parseable line), the server's CPU-seconds (utime + stime from ``/proc`` of the uvicorn process and its
children, before and after) and wrk's (from ``getrusage``). With two CPUs and ``taskset``, the servers are pinned
to one CPU and wrk to the other::

    loadgen = open_loadgen(connections=16, scratch=Path("/tmp"))
    loadgen.pin(server)
    run = loadgen.run(server, fixed_script({"Authorization": "Bearer ..."}), "/api/v1/whoami", seconds=5)
    print(run.rate, run.cpu_ms, run.p99_ms)

``Scenario``, ``measure`` and ``summary`` compare a bare endpoint with the hub: interleaved rounds, requests/s and
server CPU per request of each, and both ratios; the headline is the CPU-cost ratio, which holds even when other
jobs take CPU from the server, as they do on a shared two-core machine.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness.servers import Server, process_cpu


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


def fixed_script(headers: dict[str, str], method: str = "GET", body: bytes | None = None) -> str:
    """A fixed request: wrk builds it once and sends it again and again."""
    lines = [f"wrk.method = {lua_string(method)}"]
    lines += [f"wrk.headers[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
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

    def run(self, server: Server, script: str, path: str, seconds: float, connections: int | None = None) -> Run:
        """wrk against ``server`` for ``seconds`` (whole, at least 1) with the Lua ``script``, from ``connections``
        keep-alive connections (default: the loadgen's); the server's CPU measured around it."""
        lua = self.scratch / f"wrk-{secrets.token_hex(4)}.lua"
        lua.write_text(script)
        command = [self.wrk, "-t1", f"-c{connections or self.connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "30s", "-s", str(lua)]
        if self.wrk_cpu is not None:
            command = ["taskset", "-c", str(self.wrk_cpu), *command]
        pid = server.pid
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


def open_loadgen(connections: int, scratch: Path) -> Loadgen:
    """wrk found (or exit 2 saying how to install it) and the pinning decided, both said on stdout."""
    wrk, version = find_wrk()
    wrk_cpu, server_cpu = pinning()
    print(f"load generator: {wrk} ({version}), 1 thread, {connections} connections")
    if server_cpu is None:
        print("not pinned: taskset or a second CPU is missing; wrk and the servers share the CPUs")
    else:
        print(f"pinned with taskset: every server thread to CPU {server_cpu}, wrk to CPU {wrk_cpu}")
    return Loadgen(wrk, version, connections, scratch, wrk_cpu, server_cpu)


# -- bare against hub ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One request shape, sent alike to a bare endpoint and to the hub."""

    name: str
    label: str
    path: str
    status: int
    script: Callable[[], str]
    """The wrk script of one run: called per run, so each POST run has ids of its own."""
    target: float | None = None
    """The CPU-cost ratio bare/hub this scenario should reach, if it has a target."""


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


@dataclass
class Result:
    scenario: Scenario
    rounds: list[Round]

    def median(self, value: Callable[[Round], float]) -> float:
        return statistics.median(value(r) for r in self.rounds)

    @property
    def failed(self) -> int:
        return sum(r.bare.failed + r.hub.failed for r in self.rounds)

    @property
    def met(self) -> bool | None:
        target = self.scenario.target
        return None if target is None else self.median(lambda r: r.cost_ratio) >= target


def describe(run: Run) -> str:
    return (
        f"{run.rate:6.0f}/s {run.cpu_ms:6.3f} ms/req (server {run.server_share:4.0%}, wrk {run.wrk_share:4.0%}, "
        f"p99 {run.p99_ms:5.1f} ms)"
    )


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


def measure(
    loadgen: Loadgen, bare: Server, hub: Server, scenario: Scenario, rounds: int, seconds: float, warmup: float
) -> Result:
    """``rounds`` interleaved wrk runs (bare, hub, bare, ...) of ``scenario``, each printed as it finishes."""
    print(f"\n[{scenario.name}] {scenario.label}: {scenario.path[:90]}")
    if warmup:
        for server in (bare, hub):
            loadgen.run(server, scenario.script(), scenario.path, warmup)
    measured = []
    for number in range(1, rounds + 1):
        pair = Round(*(loadgen.run(server, scenario.script(), scenario.path, seconds) for server in (bare, hub)))
        measured.append(pair)
        failed = pair.bare.failed + pair.hub.failed
        print(
            f"  round {number}  bare {describe(pair.bare)}  hub {describe(pair.hub)}  "
            f"req/s hub/bare {pair.rate_ratio:.2f}  cost bare/hub {pair.cost_ratio:.2f}"
            + (f"  [{failed} FAILED: non-2xx/3xx or socket errors]" if failed else "")
        )
    result = Result(scenario, measured)
    target = f" (target >= {scenario.target})" if scenario.target is not None else ""
    print(f"  {saturation(result)}")
    print(
        f"  median req/s hub/bare {result.median(lambda r: r.rate_ratio):.2f}, "
        f"CPU cost ratio bare/hub {result.median(lambda r: r.cost_ratio):.2f}{target}"
    )
    return result


def summary(results: list[Result], where: str) -> None:
    """One line per scenario: medians of both servers' requests/s and CPU per request, and both ratios."""
    print(f"\nSummary (medians over interleaved rounds; {where})")
    print(
        f"  {'scenario':<9} {'bare req/s':>10} {'hub req/s':>10} {'hub/bare':>8} {'bare ms/req':>11} "
        f"{'hub ms/req':>10} {'CPU cost ratio bare/hub':>23} {'target':>7}  met"
    )
    for result in results:
        target = result.scenario.target
        print(
            f"  {result.scenario.name:<9} {result.median(lambda r: r.bare.rate):>10.0f} "
            f"{result.median(lambda r: r.hub.rate):>10.0f} {result.median(lambda r: r.rate_ratio):>8.2f} "
            f"{result.median(lambda r: r.bare.cpu_ms):>11.3f} {result.median(lambda r: r.hub.cpu_ms):>10.3f} "
            f"{result.median(lambda r: r.cost_ratio):>23.2f} {'' if target is None else '>= ' + str(target):>7}  "
            f"{'' if result.met is None else ('yes' if result.met else 'NO')}"
        )
