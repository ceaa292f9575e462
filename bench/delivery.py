"""Benchmark webhook delivery: commit-to-receiver latency, and delivered events/s against the feed read rate.

A hub (``uvicorn gateway.app:app_from_environment``, in-process delivery, SQLite in a temp dir unless
``--database-url`` names a PostgreSQL server) and a receiver process (a Starlette app that verifies every
Standard Webhooks signature, as the reference receiver does, and records for each change the time since the hub
received it: ``now - receivedAt``, the hub's clock at the write, just before its commit) run on loopback.

1. latency    for 1, 10 and 100 subscriptions to ServiceRequest: a writer commits ``--rate`` changes/s (batches
              every 100 ms) for ``--seconds``; p50/p99 of commit-to-receiver latency over every delivered change.
              Target: p99 < 1 s at 1,000 changes/s with 10 subscriptions.
2. throughput ``--backlog`` changes are committed while every subscription is paused; they are resumed and the
              run times how long until every receiver has them all: delivered events/s (all subscriptions). The
              ceiling, measured in the same run: the same changes read through ``GET /api/v1/changes`` (pages of
              1,000, one reader), events/s. Target: delivery >= 0.5 of the feed read rate.

Usage::

    .venv/bin/python bench/delivery.py --quick          # ~1-2 minutes
    .venv/bin/python bench/delivery.py                  # 1,000 changes/s for 15 s per configuration
    .venv/bin/python bench/delivery.py --receiver 9100  # (internal) run only the receiver
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path and its modules would shadow the packages.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import httpx
import orjson

from gateway.services import open_services
from gateway.settings import Settings
from schemas.identifiers import with_check_digit
from schemas.registry import MODELS_DIR

EXAMPLE: dict[str, Any] = orjson.loads((MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json").read_bytes())
SCOPES = ["service-requests:read", "service-requests:write"]


# -- the receiver (a separate process) -------------------------------------------------------------


def receiver_app() -> Any:
    from standardwebhooks.webhooks import Webhook  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import JSONResponse, Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    hooks: dict[str, Webhook] = {}
    latencies: list[float] = []
    counts: dict[str, int] = {}
    last_at = [0.0]

    async def register(request: Request) -> Response:
        body = await request.json()
        hooks[body["id"]] = Webhook(body["secret"])
        counts[body["id"]] = 0
        return Response(status_code=204)

    async def hook(request: Request) -> Response:
        sid = request.path_params["sid"]
        raw = await request.body()
        message = hooks[sid].verify(raw, dict(request.headers))
        now = time.time()
        for change in message["changes"]:
            latencies.append(now - change["receivedAt"])
        counts[sid] += len(message["changes"])
        last_at[0] = now
        return Response(status_code=204)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"latencies": latencies, "counts": counts, "lastAt": last_at[0]})

    async def reset(request: Request) -> Response:
        latencies.clear()
        for key in counts:
            counts[key] = 0
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/register", register, methods=["POST"]),
            Route("/hook/{sid}", hook, methods=["POST"]),
            Route("/stats", stats),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


# -- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts a hub slowly
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.2)


def start_hub(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QALA_ENV": "demo",
        "QALA_DATABASE_URL": database_url,
        "QALA_ISSUER": f"http://127.0.0.1:{port}",
        "QALA_RATE_LIMIT_ENABLED": "false",
        "QALA_DELIVERY_POLL_SECONDS": "0.05",
        "QALA_DELIVERY_CONCURRENCY": "32",
    }
    command = [sys.executable, "-m", "uvicorn", "gateway.app:app_from_environment", "--factory"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/oauth/jwks", process)
    except BaseException:
        process.terminate()  # not left behind when it was only slow to start
        process.wait(timeout=30)
        raise
    return process


def register_client(database_url: str) -> tuple[str, str]:
    async def setup() -> tuple[str, str]:
        async with open_services(Settings(env="demo", database_url=database_url)) as services:
            member = with_check_digit("97024000122")
            if not await services.directory.list_members():
                await services.directory.create_member(name="Bench", bin=member, home_city="astana")
            client, secret = await services.directory.create_client(
                member=member, name="bench", scopes=SCOPES, cities=["astana"]
            )
            assert secret is not None
            return client.client_id, secret

    return asyncio.run(setup())


# -- the runs -----------------------------------------------------------------------------------------


def entity(name: str) -> bytes:
    return orjson.dumps({**EXAMPLE, "id": f"urn:ngsi-ld:ServiceRequest:astana:{name}"})


async def write_at_rate(http: httpx.AsyncClient, prefix: str, rate: int, seconds: float) -> int:
    """Commit ``rate`` changes/s as a batch every 100 ms; returns how many were written."""
    per_tick = max(1, rate // 10)
    ticks = int(seconds * 10)
    start = time.monotonic()
    for tick in range(ticks):
        body = b"\n".join(entity(f"{prefix}-{tick}-{i}") for i in range(per_tick))
        response = await http.post("/api/v1/batch", content=body, headers={"Content-Type": "application/x-ndjson"})
        response.raise_for_status()
        await asyncio.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))
    return per_tick * ticks


async def wait_counts(receiver: str, subscriptions: list[str], total: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=60) as http:
        while True:
            stats: dict[str, Any] = (await http.get(f"{receiver}/stats")).json()
            if all(stats["counts"].get(s, 0) >= total for s in subscriptions) or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.2)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def configuration(hub: str, receiver: str, headers: dict[str, str], count: int, args: Any) -> None:
    async with httpx.AsyncClient(base_url=hub, headers=headers, timeout=120) as http:
        ids = []
        for _ in range(count):
            created = (
                await http.post(
                    "/api/v1/subscriptions",
                    json={"types": ["ServiceRequest"], "delivery": {"kind": "webhook", "url": f"{receiver}/hook/x"}},
                )
            ).json()
            sid = created["id"]
            await http.patch(
                f"/api/v1/subscriptions/{sid}", json={"delivery": {"kind": "webhook", "url": f"{receiver}/hook/{sid}"}}
            )
            httpx.post(f"{receiver}/register", json={"id": sid, "secret": created["secret"]})
            ids.append(sid)
        httpx.post(f"{receiver}/reset")

        written = await write_at_rate(http, f"L{count}", args.rate, args.seconds)
        stats = await wait_counts(receiver, ids, written, timeout=120)
        latencies = stats["latencies"]
        delivered = sum(stats["counts"][s] for s in ids)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(
            f"  latency   {count:>3} subscriptions  {args.rate} changes/s for {args.seconds:g} s: "
            f"p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  ({delivered} of {written * count} delivered)",
            flush=True,
        )

        for sid in ids:
            await http.post(f"/api/v1/subscriptions/{sid}/pause")
        httpx.post(f"{receiver}/reset")
        body_lines = [entity(f"B{count}-{i}") for i in range(args.backlog)]
        for start in range(0, args.backlog, 2000):
            await http.post(
                "/api/v1/batch",
                content=b"\n".join(body_lines[start : start + 2000]),
                headers={"Content-Type": "application/x-ndjson"},
            )
        # the ceiling: one reader drains the same backlog from the change feed
        began = time.monotonic()
        read = 0
        cursor = (await http.get(f"/api/v1/subscriptions/{ids[0]}")).json()["cursor"]  # paused just before
        url: str | None = f"/api/v1/changes?limit=1000&types=ServiceRequest&since={cursor}"
        while url:
            page = (await http.get(url)).json()
            read += len(page["changes"])
            url = page["next"]
        feed_rate = read / (time.monotonic() - began)
        began = time.time()
        for sid in ids:
            await http.post(f"/api/v1/subscriptions/{sid}/resume")
        stats = await wait_counts(receiver, ids, args.backlog, timeout=300)
        elapsed = stats["lastAt"] - began  # the receiver's clock at its last delivery; same machine
        delivered = sum(stats["counts"][s] for s in ids)
        rate = delivered / elapsed
        print(
            f"  throughput {count:>3} subscriptions: {delivered} events in {elapsed:.2f} s = {rate:,.0f} events/s; "
            f"feed read {feed_rate:,.0f} events/s; ratio {rate / feed_rate:.2f}",
            flush=True,
        )
        for sid in ids:
            await http.delete(f"/api/v1/subscriptions/{sid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per configuration, a 2,000-change backlog")
    parser.add_argument("--rate", type=int, default=1000, help="changes/s during the latency runs")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--subscriptions", default="1,10,100")
    parser.add_argument("--database-url", help="a PostgreSQL database to use (default: SQLite in a temp dir)")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        import uvicorn  # noqa: PLC0415

        uvicorn.run(receiver_app(), host="127.0.0.1", port=args.receiver, log_level="warning", access_log=False)
        return
    if args.quick:
        args.seconds, args.backlog = 3.0, 2_000
    work = Path(tempfile.mkdtemp(prefix="qala-bench-delivery-"))
    database_url = args.database_url or f"sqlite:///{work / 'hub.db'}"
    hub_port, receiver_port = free_port(), free_port()
    receiver_process = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(receiver_port)], stdout=subprocess.DEVNULL
    )
    hub_process: subprocess.Popen[bytes] | None = None
    try:
        receiver = f"http://127.0.0.1:{receiver_port}"
        wait_up(f"{receiver}/stats", receiver_process)
        client_id, secret = register_client(database_url)
        hub_process = start_hub(database_url, hub_port)
        hub = f"http://127.0.0.1:{hub_port}"
        token = httpx.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        ).json()["access_token"]
        engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        print(f"delivery bench on {engine}, loopback, in-process delivery (shared machine: figures are indicative)")
        for count in (int(c) for c in args.subscriptions.split(",")):
            asyncio.run(configuration(hub, receiver, {"Authorization": f"Bearer {token}"}, count, args))
    finally:
        for process in (hub_process, receiver_process):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
