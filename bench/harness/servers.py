"""uvicorn servers on loopback for the benches: the hub on a given database, and bare FastAPI ceilings.

Every server is ``python -m uvicorn <app> --factory`` with the same settings (one process, 127.0.0.1, warning log
level, no access log), so uvicorn picks the same loop and HTTP parser for the hub and for the ceiling it is
compared with::

    with contextlib.ExitStack() as stack:
        client = register("sqlite:////tmp/hub.db")
        hub = start_hub(stack, "sqlite:////tmp/hub.db")
        headers = bearer(hub, client)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from gateway.services import open_services
from gateway.settings import Settings
from schemas.identifiers import with_check_digit
from schemas.registry import MODELS_DIR

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json").read_bytes())
SCOPES = ("service-requests:read", "service-requests:write")
UVICORN = ["--factory", "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def own_cpu(pid: int) -> float | None:
    """utime + stime, in seconds, of process ``pid`` (all its threads, not its children); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(stat[11]) + int(stat[12])) / TICKS


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (of any of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(child) for child in task.read_text().split()]
    return found


def process_cpu(pid: int) -> float:
    """utime + stime, in seconds, of process ``pid`` (all its threads) and of its live child processes."""
    own = own_cpu(pid)
    return 0.0 if own is None else own + sum(process_cpu(child) for child in child_pids(pid))


@dataclass
class Server:
    """One uvicorn process on a free loopback port; stopped (and killed if it must) on ``stop``."""

    target: str
    env: dict[str, str] = field(default_factory=dict)
    app_dir: str | None = str(ROOT)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise SystemExit(f"{self.target} is not running")
        return self.process.pid

    def start(self, ready_path: str, timeout: float = 60.0) -> None:
        command = [sys.executable, "-m", "uvicorn", self.target, *UVICORN, "--port", str(self.port)]
        if self.app_dir:
            command += ["--app-dir", self.app_dir]
        # Own session: a Ctrl-C reaches only the bench, which then stops the servers in order. `python -m` puts
        # the cwd first on the path: the clone, not bench/ (whose catalogue.py would shadow the package).
        self.process = subprocess.Popen(command, env=self.env, start_new_session=True, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.target} exited with {self.process.returncode} on start")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base + ready_path, timeout=1).status_code < 500:
                    return
            time.sleep(0.2)
        raise SystemExit(f"{self.target} did not start within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (and any children) so far, from /proc."""
        return process_cpu(self.process.pid) if self.process is not None else 0.0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def hub_env(database_url: str) -> dict[str, str]:
    """The hub's environment: demo mode on ``database_url``, rate limits too high to bite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALA_")}
    return {
        **env,
        "QALA_ENV": "demo",
        "QALA_DATABASE_URL": database_url,
        "QALA_RATE_LIMIT_REQUESTS": "1000000000",
        "QALA_TOKEN_RATE_LIMIT_REQUESTS": "1000000000",
    }


def start_hub(stack: contextlib.ExitStack, database_url: str) -> Server:
    """The hub on ``database_url``, started and ready; stopped when ``stack`` closes."""
    hub = Server("gateway.app:app_from_environment", hub_env(database_url))
    hub.env["QALA_ISSUER"] = hub.base  # next links are built on the configured public URL, never the Host header
    stack.callback(hub.stop)
    hub.start("/oauth/jwks")
    return hub


def start_bare(stack: contextlib.ExitStack, target: str, ready_path: str, env: dict[str, str] | None = None) -> Server:
    """A bare FastAPI app (``bench.<script>:<factory>``), started and ready; stopped when ``stack`` closes."""
    bare = Server(target, env if env is not None else hub_env("sqlite://"))
    stack.callback(bare.stop)
    bare.start(ready_path)
    return bare


def register(database_url: str, scopes: Sequence[str] = SCOPES) -> tuple[str, str]:
    """A member and a client for Astana with ``scopes``, written straight into the hub's database (creates the
    tables); (client id, secret)."""

    async def setup() -> tuple[str, str]:
        member_bin = with_check_digit("97024000133")
        async with open_services(Settings(env="demo", database_url=database_url)) as services:
            await services.directory.create_member(name="Bench Akimat", bin=member_bin, home_city="astana")
            client, secret = await services.directory.create_client(
                member=member_bin, name="bench", scopes=list(scopes), cities=["astana"]
            )
        if secret is None:
            raise SystemExit("the directory returned no client secret")
        return client.client_id, secret

    return asyncio.run(setup())


def bearer(hub: Server, client: tuple[str, str]) -> dict[str, str]:
    """An ``Authorization`` header with a fresh access token of ``client``."""
    response = httpx.post(f"{hub.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextlib.contextmanager
def throwaway_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh ``qala_bench_<random>`` database on the PostgreSQL server of ``admin_url``; dropped (with its
    connections) on exit."""
    name = f"qala_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def hub_database(stack: contextlib.ExitStack, scratch: Path, admin_url: str | None) -> tuple[str, str]:
    """The hub's database URL and a line describing it: a throwaway database on the PostgreSQL server of
    ``admin_url`` (dropped when ``stack`` closes), or without one a SQLite file in ``scratch``."""
    if admin_url is None:
        return f"sqlite:///{scratch}/hub.db", "SQLite in a temp dir"
    database_url = stack.enter_context(throwaway_database(admin_url))
    return database_url, f"PostgreSQL, throwaway database {database_url.rsplit('/', 1)[1]}"


def post_batch(hub: Server, headers: dict[str, str], rows: list[tuple[str, bytes]]) -> float:
    """Entities/s of one NDJSON batch, from the first byte sent to the last result line read.

    The result lines are counted by status with ``bytes.count`` rather than parsed one by one: on a two-core
    machine the client's parsing would take CPU from the server it is measuring."""
    body = b"".join(line + b"\n" for _, line in rows)
    sent = {**headers, "Content-Type": "application/x-ndjson"}
    started = time.perf_counter()
    with httpx.stream("POST", f"{hub.base}/api/v1/batch", content=body, headers=sent, timeout=600) as response:
        if response.status_code != 200:
            response.read()
            raise SystemExit(f"batch answered {response.status_code}: {response.text[:300]}")
        answer = b"".join(response.iter_bytes())
    elapsed = time.perf_counter() - started
    lines, created = answer.count(b"\n"), answer.count(b'"status":"created"')
    if lines != len(rows) or created != len(rows):
        raise SystemExit(f"unexpected batch results: {lines} lines, {created} created, of {len(rows)}")
    return len(rows) / elapsed
