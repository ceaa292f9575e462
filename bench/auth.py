"""Benchmark the gateway's security path against a bare FastAPI endpoint, in the same run, on loopback.

Starts one uvicorn process for the gateway (same settings as production code paths: SQLite by default, audit log
on, rate limiter on with a limit too high to bite) and one for a bare FastAPI app, then measures for a few seconds
each:

- tokens issued per second (client_credentials + client_secret_basic; each one is an audit append),
- protected requests per second (GET /api/v1/whoami with a bearer token: verify, rate limit, audit append),
- bare requests per second (GET /ping on a FastAPI app with no middleware),

and prints the ratios against the bare endpoint. Usage::

    .venv/bin/python bench/auth.py [--seconds 3] [--concurrency 32] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# Run as `python bench/<name>.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from gateway.services import open_services  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from schemas.identifiers import with_check_digit  # noqa: E402


def bare_app() -> FastAPI:
    """The ceiling: FastAPI with one JSON endpoint and nothing else."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(target: str, port: int, env: dict[str, str], app_dir: str | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log"]
    if app_dir:
        command += ["--app-dir", app_dir]
    return subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent)  # `-m` puts cwd first


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


Send = Callable[[httpx.AsyncClient], Awaitable[int]]


async def measure(label: str, send: Send, seconds: float, concurrency: int) -> float:
    """Requests per second of ``send`` from ``concurrency`` keep-alive connections, after a short warm-up.

    Each loop owns its client (one connection): a shared httpx pool serialises on its lock and would measure
    the load generator rather than the server.
    """
    clients = [httpx.AsyncClient(timeout=10) for _ in range(concurrency)]
    counts = {"ok": 0, "failed": 0}

    async def loop(http: httpx.AsyncClient, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            status = await send(http)
            if record:
                counts["ok" if status == 200 else "failed"] += 1

    try:
        warm = time.perf_counter() + 0.5
        await asyncio.gather(*(loop(http, warm, record=False) for http in clients))
        started = time.perf_counter()
        await asyncio.gather(*(loop(http, started + seconds, record=True) for http in clients))
        rate = counts["ok"] / (time.perf_counter() - started)
    finally:
        for http in clients:
            await http.aclose()
    note = f" ({counts['failed']} failed)" if counts["failed"] else ""
    print(f"{label:<36} {rate:>8.0f} /s{note}")
    return rate


async def register(database_url: str) -> tuple[str, str]:
    member_bin = with_check_digit("97024000122")
    async with open_services(Settings(env="demo", database_url=database_url)) as services:
        await services.directory.create_member(name="Bench Akimat", bin=member_bin, home_city="astana")
        client, secret = await services.directory.create_client(
            member=member_bin, name="bench", scopes=["service-requests:read"], cities=["astana"]
        )
    assert secret is not None
    return client.client_id, secret


async def run(args: argparse.Namespace, gateway: str, bare: str, client_id: str, secret: str) -> None:
    form = {"grant_type": "client_credentials"}
    response = httpx.post(f"{gateway}/oauth/token", data=form, auth=(client_id, secret))
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def token(http: httpx.AsyncClient) -> int:
        return (await http.post(f"{gateway}/oauth/token", data=form, auth=(client_id, secret))).status_code

    async def protected(http: httpx.AsyncClient) -> int:
        return (await http.get(f"{gateway}/api/v1/whoami", headers=headers)).status_code

    async def ping(http: httpx.AsyncClient) -> int:
        return (await http.get(f"{bare}/ping")).status_code

    print(f"{args.seconds:.0f} s per measurement, {args.concurrency} connections, one uvicorn worker each, loopback")
    bare_rate = await measure("bare FastAPI GET /ping", ping, args.seconds, args.concurrency)
    token_rate = await measure("tokens issued POST /oauth/token", token, args.seconds, args.concurrency)
    protected_rate = await measure("protected GET /api/v1/whoami", protected, args.seconds, args.concurrency)
    print(f"ratio tokens/bare     {token_rate / bare_rate:.2f}")
    print(f"ratio protected/bare  {protected_rate / bare_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, its figures mean little")
    if "--quick" in sys.argv:
        parser.set_defaults(seconds=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database_url = args.database_url or f"sqlite:///{scratch}/bench.db"
        client_id, secret = asyncio.run(register(database_url))
        env = {
            **os.environ,
            "QALA_ENV": "demo",
            "QALA_DATABASE_URL": database_url,
            "QALA_RATE_LIMIT_REQUESTS": "1000000000",
            "QALA_TOKEN_RATE_LIMIT_REQUESTS": "1000000000",
        }
        gateway_port, bare_port = free_port(), free_port()
        servers = [
            start("gateway.app:app_from_environment", gateway_port, env),
            start("auth:bare_app", bare_port, env, app_dir=str(Path(__file__).parent)),
        ]
        try:
            gateway, bare = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{bare_port}"
            wait_ready(f"{gateway}/oauth/jwks")
            wait_ready(f"{bare}/ping")
            asyncio.run(run(args, gateway, bare, client_id, secret))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=20)


if __name__ == "__main__":
    main()
