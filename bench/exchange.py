"""Benchmark the exchange API against bare baselines, in one run, on loopback.

Every server is ``python -m uvicorn <app> --factory`` with the same settings (one process, 127.0.0.1, warning
log level, no access log; uvicorn picks the same loop and HTTP parser for all). Three phases, each printing its
figures as it finishes:

1. single   POST /api/v1/service-requests requests/s through the real hub (bearer token, rate limiter with a limit
            too high to bite, JSON Schema validation, persistence, audit record in the same transaction; SQLite in
            a temp dir) against a bare FastAPI endpoint that only runs ``await request.json()`` and answers 201.
            Rounds are interleaved (bare, hub, bare, hub, ...) and the median ratio is reported. Target >= 0.4.
2. batch    POST /api/v1/batch (NDJSON) entities/s on SQLite and on PostgreSQL (throwaway ``qala_bench_*``
            databases, dropped at the end), each against a raw insert, without the hub, of the same rows the hub
            stores (payload and metadata columns, computed before the clock starts) into a table made from the
            hub's own DDL with its indexes: SQLite ``executemany``, PostgreSQL ``COPY``. Target >= 0.3 of that.
            For reference it also prints a raw insert of just (id, payload) into a two-column table without
            secondary indexes: the floor of any store, which the indexes the list filters need cost 2-3x.
3. list     p50/p99 latency of ``GET /api/v1/service-requests?city=astana&status=open&limit=100`` and of the
            page behind its ``next`` link, with N entities (default 1,000,000) bulk-loaded into the hub's SQLite
            ``entities`` table, timed sequentially.

Usage::

    .venv/bin/python bench/exchange.py            # the full run (~5-8 minutes on 2 cores)
    .venv/bin/python bench/exchange.py --quick    # smaller sizes, ~1-2 minutes
    .venv/bin/python bench/exchange.py --phases single,batch --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path and its modules (bench/catalogue.py) would shadow the packages.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

# Run as `python bench/<name>.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from gateway.db import metadata  # noqa: E402
from gateway.services import open_services  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store.records import bounding_box, content_hash, posix_seconds  # noqa: E402
from gateway.store.tables import SEQUENCE_ROW, entities, entity_sequence  # noqa: E402
from schemas.identifiers import with_check_digit  # noqa: E402
from schemas.registry import MODELS_DIR  # noqa: E402

EXAMPLE: dict[str, Any] = json.loads((MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json").read_bytes())
SCOPES = ["service-requests:read", "service-requests:write"]
UVICORN = ["--factory", "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LIST_QUERY = "city=astana&status=open&limit=100"
TICKS = os.sysconf("SC_CLK_TCK")
MARK = "@@ID@@"


def bare_app() -> FastAPI:
    """The ceiling: FastAPI with one endpoint that parses the JSON body and answers 201, nothing else."""
    app = FastAPI()

    @app.post("/api/v1/service-requests")
    async def create(request: Request) -> Response:
        await request.json()
        return Response(status_code=201)

    return app


# -- servers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One uvicorn process on a free loopback port; stopped (and killed if it must) on ``stop``."""

    target: str
    env: dict[str, str] = field(default_factory=dict)
    app_dir: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str, timeout: float = 60.0) -> None:
        command = [sys.executable, "-m", "uvicorn", self.target, *UVICORN, "--port", str(self.port)]
        if self.app_dir:
            command += ["--app-dir", self.app_dir]
        # Own session: a Ctrl-C reaches only this script, which then stops the servers in order.
        root = Path(__file__).resolve().parent.parent  # `python -m` puts the cwd first on the path: not bench/
        self.process = subprocess.Popen(command, env=self.env, start_new_session=True, cwd=root)
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
        """User + system CPU time of the server process so far (from /proc)."""
        if self.process is None:
            return 0.0
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / TICKS

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALA_")}
    return {
        **env,
        "QALA_ENV": "demo",
        "QALA_DATABASE_URL": database_url,
        "QALA_RATE_LIMIT_REQUESTS": "1000000000",
        "QALA_TOKEN_RATE_LIMIT_REQUESTS": "1000000000",
    }


def start_hub(stack: contextlib.ExitStack, database_url: str) -> Server:
    hub = Server("gateway.app:app_from_environment", hub_env(database_url))
    hub.env["QALA_ISSUER"] = hub.base  # next links are built on the configured public URL, never the Host header
    stack.callback(hub.stop)
    hub.start("/oauth/jwks")
    return hub


def register(database_url: str) -> tuple[str, str]:
    """A member and a read/write client for Astana, written straight into the hub's database (creates tables)."""

    async def setup() -> tuple[str, str]:
        member_bin = with_check_digit("97024000133")
        async with open_services(Settings(env="demo", database_url=database_url)) as services:
            await services.directory.create_member(name="Bench Akimat", bin=member_bin, home_city="astana")
            client, secret = await services.directory.create_client(
                member=member_bin, name="bench-exchange", scopes=SCOPES, cities=["astana"]
            )
        if secret is None:
            raise SystemExit("the directory returned no client secret")
        return client.client_id, secret

    return asyncio.run(setup())


def bearer(hub: Server, client: tuple[str, str]) -> dict[str, str]:
    response = httpx.post(f"{hub.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# -- entities -----------------------------------------------------------------------------------------------


class Template:
    """The example ServiceRequest as JSON bytes with a slot for the local part of its id (cheap unique copies)."""

    def __init__(self, city: str = "astana") -> None:
        entity = {**EXAMPLE, "id": f"urn:ngsi-ld:ServiceRequest:{city}:{MARK}", "city": city}
        self.head, self.tail = orjson.dumps(entity).split(MARK.encode())
        self.prefix = f"urn:ngsi-ld:ServiceRequest:{city}:"

    def body(self, local_id: str) -> bytes:
        return self.head + local_id.encode() + self.tail

    def rows(self, tag: str, count: int) -> list[tuple[str, bytes]]:
        return [(f"{self.prefix}{tag}-{i:06d}", self.body(f"{tag}-{i:06d}")) for i in range(count)]


# -- phase 1: single-entity POST ----------------------------------------------------------------------------


@dataclass
class Load:
    rate: float
    failed: int
    server_cpu: float
    client_cpu: float

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per answered request: the cost, whatever else competes for the cores."""
        return self.server_cpu / self.rate * 1000 if self.rate else float("nan")


async def hammer(server: Server, headers: dict[str, str], ids: Iterator[str], seconds: float, concurrency: int) -> Load:
    """POSTs per second from ``concurrency`` keep-alive connections (one httpx client each) for ``seconds``."""
    template = Template()
    url = f"{server.base}/api/v1/service-requests"
    sent = {**headers, "Content-Type": "application/json"}
    clients = [httpx.AsyncClient(timeout=30) for _ in range(concurrency)]
    counts = {"ok": 0, "failed": 0}
    problem: list[str] = []

    async def loop(http: httpx.AsyncClient, until: float) -> None:
        while time.perf_counter() < until:
            response = await http.post(url, content=template.body(next(ids)), headers=sent)
            if response.status_code == 201:
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                problem[:] = problem or [f"{response.status_code} {response.text[:300]}"]

    try:
        cpu, server_cpu, started = time.process_time(), server.cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(loop(http, started + seconds) for http in clients))
        elapsed = time.perf_counter() - started
        load = Load(
            counts["ok"] / elapsed,
            counts["failed"],
            (server.cpu_seconds() - server_cpu) / elapsed,
            (time.process_time() - cpu) / elapsed,
        )
    finally:
        for http in clients:
            await http.aclose()
    if problem:
        print(f"    first failure: {problem[0]}")
    return load


async def single_rounds(
    bare: Server, hub: Server, headers: dict[str, str], args: argparse.Namespace
) -> tuple[float, float, float, float]:
    counter = itertools.count()
    tag = secrets.token_hex(3)
    ids = (f"S{tag}-{n}" for n in counter)
    await hammer(bare, {}, ids, args.warmup, args.concurrency)
    await hammer(hub, headers, ids, args.warmup, args.concurrency)
    bare_rates, hub_rates, ratios, cost_ratios = [], [], [], []
    for number in range(1, args.rounds + 1):
        plain = await hammer(bare, {}, ids, args.seconds, args.concurrency)
        real = await hammer(hub, headers, ids, args.seconds, args.concurrency)
        bare_rates.append(plain.rate)
        hub_rates.append(real.rate)
        ratios.append(real.rate / plain.rate)
        cost_ratios.append(plain.cpu_ms / real.cpu_ms)
        failed = plain.failed + real.failed
        print(
            f"  round {number}: bare {plain.rate:6.0f}/s (cpu {plain.server_cpu:4.0%}, {plain.cpu_ms:5.2f} ms/req, "
            f"client {plain.client_cpu:4.0%})   hub {real.rate:6.0f}/s (cpu {real.server_cpu:4.0%}, "
            f"{real.cpu_ms:5.2f} ms/req, client {real.client_cpu:4.0%})   ratio {ratios[-1]:.2f}"
            + (f"  [{failed} failed]" if failed else "")
        )
    rates = statistics.median(bare_rates), statistics.median(hub_rates), statistics.median(ratios)
    return (*rates, statistics.median(cost_ratios))


# -- phase 2: batch ingest ----------------------------------------------------------------------------------


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
        print(f"    unexpected batch results: {lines} lines, {created} created, of {len(rows)}")
    return len(rows) / elapsed


def raw_sqlite(path: Path, rows: list[tuple[str, bytes]]) -> float:
    """Rows/s of one ``executemany`` of (id, payload JSON) into a plain two-column table, with the hub's pragmas."""
    params = [(key, line.decode()) for key, line in rows]
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE raw_entities (id TEXT PRIMARY KEY, payload TEXT NOT NULL)")
        started = time.perf_counter()
        db.executemany("INSERT INTO raw_entities (id, payload) VALUES (?, ?)", params)
        db.commit()
        return len(rows) / (time.perf_counter() - started)


def raw_sqlite_table(path: Path, rows: list[tuple[Any, ...]]) -> float:
    """Rows/s of one ``executemany`` of full hub rows into a table made from the hub's DDL (kept across rounds,
    so it grows as the hub's does), with the hub's pragmas."""
    fresh = not path.exists()
    if fresh:
        engine = sa.create_engine(f"sqlite:///{path}")
        metadata.create_all(engine, tables=[entities])
        engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-32768"):
            db.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        db.executemany(INSERT_ROW, rows)
        db.commit()
        return len(rows) / (time.perf_counter() - started)


def raw_postgres(url: str, table: str, rows: list[tuple[str, bytes]]) -> float:
    """Rows/s of one ``COPY`` of (id, payload JSONB) into a plain two-column table."""
    params = [(key, line.decode()) for key, line in rows]
    with psycopg.connect(url) as db:
        db.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, payload jsonb NOT NULL)")
        db.commit()
        started = time.perf_counter()
        with db.cursor() as cursor, cursor.copy(f"COPY {table} (id, payload) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        db.commit()
        return len(rows) / (time.perf_counter() - started)


def raw_postgres_table(url: str, rows: list[tuple[Any, ...]]) -> float:
    """Rows/s of one ``COPY`` of full hub rows into a table made from the hub's DDL (GIN index included)."""
    with psycopg.connect(url) as db:
        started = time.perf_counter()
        columns = ", ".join(ROW_COLUMNS)
        with db.cursor() as cursor, cursor.copy(f"COPY {entities.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        db.commit()
        return len(rows) / (time.perf_counter() - started)


def hub_rows(rows: list[tuple[str, bytes]], seq: Iterator[int]) -> list[tuple[Any, ...]]:
    """The rows the hub stores for these entities, in ``ROW_COLUMNS`` order."""
    now = time.time()
    return [row_of(orjson.loads(line), seq=next(seq), now=now, publisher=("bench-raw", None)) for _, line in rows]


@dataclass
class BatchRound:
    table: float
    plain: float
    hub: float


def batch_rounds(
    engine: str, hub: Server, headers: dict[str, str], raw: Any, raw_table: Any, args: argparse.Namespace
) -> tuple[float, float, float, float, float]:
    """Interleaved raw/hub rounds with fresh ids each; medians of the raw same-table rate, the raw plain-table
    rate, the hub rate, and the hub's ratio to each."""
    template = Template()
    seq = itertools.count(10**12)
    measured: list[BatchRound] = []
    for number in range(1, args.batch_rounds + 1):
        tag = f"B{secrets.token_hex(3)}"
        rows = template.rows(tag, args.batch)
        table = raw_table(hub_rows(rows, seq))
        plain = raw(number, rows)
        real = post_batch(hub, headers, rows)
        measured.append(BatchRound(table, plain, real))
        print(
            f"  {engine} round {number}: raw same table {table:7.0f}/s   raw plain table {plain:7.0f}/s   "
            f"hub {real:7.0f}/s   ratio {real / table:.3f} (to the plain table {real / plain:.3f})"
        )
    return (
        statistics.median(r.table for r in measured),
        statistics.median(r.plain for r in measured),
        statistics.median(r.hub for r in measured),
        statistics.median(r.hub / r.table for r in measured),
        statistics.median(r.hub / r.plain for r in measured),
    )


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh ``qala_bench_<random>`` PostgreSQL database; dropped (with its connections) on exit."""
    name = f"qala_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- phase 3: list latency at scale -------------------------------------------------------------------------

CITIES = (("astana", 0.5), ("almaty", 0.3), ("shymkent", 0.2))
OPEN_SHARE = 0.4  # of each city's requests; the rest are closed (resolved, with dateClosed)


def entity_rows(total: int, publisher: tuple[str, str | None]) -> Iterator[tuple[Any, ...]]:
    """Rows of the hub's ``entities`` table in id order (ids carry the city), seq 1..total, 40% of each city open."""
    now = time.time()
    seq = 0
    for city, share in CITIES:
        count = round(total * share) if city != CITIES[-1][0] else total - seq
        for n in range(count):
            seq += 1
            entity = dict(EXAMPLE)
            entity["id"] = f"urn:ngsi-ld:ServiceRequest:{city}:L{n:07d}"
            entity["city"] = city
            entity["serviceRequestId"] = f"L{n:07d}"
            entity["dateModified"] = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T09:{n % 60:02d}:07+05:00"
            if (n % 10) >= OPEN_SHARE * 10:
                entity.update(status="closed", statusDetail="resolved", dateClosed=entity["dateModified"])
            yield row_of(entity, seq=seq, now=now, publisher=publisher)


def row_of(entity: dict[str, Any], *, seq: int, now: float, publisher: tuple[str, str | None]) -> tuple[Any, ...]:
    """One ServiceRequest as a row of the hub's ``entities`` table, in ``ROW_COLUMNS`` order."""
    box = bounding_box(entity)
    return (
        entity["id"],
        entity["type"],
        "service-requests",
        entity["city"],
        orjson.dumps(entity).decode(),
        content_hash(entity),
        1,
        seq,
        False,
        posix_seconds(entity["dateModified"]),
        *(box if box else (None, None, None, None)),
        now,
        now,
        publisher[0],
        publisher[1],
        "1.1.0",
    )


ROW_COLUMNS = (
    *("id", "type", "collection", "city", "payload", "content_hash", "version", "seq", "deleted", "date_modified"),
    *("min_lon", "min_lat", "max_lon", "max_lat", "received_at", "created_at", "client_id", "member"),
    "schema_version",
)
INSERT_ROW = f"INSERT INTO {entities.name} ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"


def bulk_load(path: Path, total: int, client_id: str) -> tuple[int, float]:
    """Insert ``total`` ServiceRequests straight into the hub's tables; (rows in the table, seconds)."""
    missing = {c.name for c in entities.columns} ^ set(ROW_COLUMNS)
    if missing:
        raise SystemExit(f"gateway/store/tables.py changed: columns {sorted(missing)} differ from this bench")
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as db:
        member = db.execute("SELECT member FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
        db.executemany(INSERT_ROW, entity_rows(total, (client_id, member[0] if member else None)))
        # The change feed's head must be the last seq written, as EntityStore keeps it.
        db.execute(
            f"INSERT INTO {entity_sequence.name} (id, value) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET value = excluded.value",
            (SEQUENCE_ROW, total),
        )
        db.commit()
        rows = int(db.execute(f"SELECT count(*) FROM {entities.name}").fetchone()[0])
    return rows, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def list_latency(hub: Server, headers: dict[str, str], requests: int) -> tuple[list[float], list[float]]:
    """Milliseconds of the first page and of the page behind its ``next`` link, ``requests`` times each."""
    first_ms, second_ms = [], []
    with httpx.Client(headers=headers, timeout=60) as http:
        for attempt in range(requests + 10):  # the first 10 warm up caches and the connection
            started = time.perf_counter()
            page = http.get(f"{hub.base}/api/v1/service-requests?{LIST_QUERY}")
            middle = time.perf_counter()
            if page.status_code != 200 or not page.json()["next"]:
                raise SystemExit(f"list answered {page.status_code}: {page.text[:300]}")
            following = http.get(page.json()["next"])
            ended = time.perf_counter()
            if following.status_code != 200 or len(following.json()["items"]) != 100:
                raise SystemExit(f"next page answered {following.status_code}: {following.text[:300]}")
            if attempt >= 10:
                first_ms.append((middle - started) * 1000)
                second_ms.append((ended - middle) * 1000)
    return first_ms, second_ms


# -- the run ------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: str
    target: str
    met: bool | None


HEADER = """\
Qala exchange benchmark: every server is `uvicorn <app> --factory` with the same settings (one process,
127.0.0.1, --log-level warning --no-access-log); the load generator is httpx in this process.
  single  requests/s of POST /api/v1/service-requests (real bearer token, validation, SQLite write, audit)
          against a bare FastAPI POST that only parses the JSON body; median over interleaved rounds.
          cpu = share of one core used by the server during the round, and its CPU ms per request;
          client = share of one core used by this load generator (near 100%: it, not the server, is the limit).
  batch   entities/s of POST /api/v1/batch (NDJSON, measured until the last result line) against a raw
          insert of the same rows the hub stores into a table made from the hub's DDL (SQLite executemany /
          PostgreSQL COPY; timed: insert + commit only, rows prepared beforehand); the raw insert of just
          (id, payload) into a two-column table is printed beside it, for reference.
  list    latency of GET /api/v1/service-requests?{query} (page 1) and of its next link
          (page 2), sequential requests, with the given number of entities stored (SQLite)."""


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> list[Figure]:
    figures: list[Figure] = []
    phases = set(args.phases.split(","))
    sqlite_url = f"sqlite:///{scratch}/hub.db"
    hub: Server | None = None
    headers: dict[str, str] = {}
    if phases & {"single", "batch"}:
        client = register(sqlite_url)
        hub = start_hub(stack, sqlite_url)
        headers = bearer(hub, client)
        print(f"\nhub (SQLite) pid {hub.process.pid if hub.process else '?'} on {hub.base}")

    if "single" in phases and hub is not None:
        bare = Server("bench.exchange:bare_app", hub_env(sqlite_url), app_dir=str(Path(__file__).parent.parent))
        stack.callback(bare.stop)
        bare.start("/docs")
        print(
            f"\n[single] {args.rounds} rounds x {args.seconds:g} s each side, {args.concurrency} connections, "
            f"{args.warmup:g} s warm-up"
        )
        bare_rate, hub_rate, ratio, cost = asyncio.run(single_rounds(bare, hub, headers, args))
        bare.stop()
        print(f"  median: bare {bare_rate:.0f}/s, hub {hub_rate:.0f}/s, ratio {ratio:.2f} (target >= 0.4)")
        print(f"  median server-CPU cost ratio bare/hub {cost:.2f} (the same ratio if both were CPU-bound)")
        figures += [
            Figure("single POST bare FastAPI", f"{bare_rate:.0f} req/s", "", None),
            Figure("single POST hub", f"{hub_rate:.0f} req/s", "", None),
            Figure("single POST hub/bare (median)", f"{ratio:.2f}", ">= 0.4", ratio >= 0.4),
            Figure("single POST CPU cost bare/hub", f"{cost:.2f}", "", None),
        ]

    if "batch" in phases and hub is not None:
        print(f"\n[batch] {args.batch} ServiceRequests per batch, {args.batch_rounds} interleaved rounds per engine")

        def sqlite_raw(number: int, rows: list[tuple[str, bytes]]) -> float:
            return raw_sqlite(scratch / f"raw-{number}.db", rows)

        def sqlite_table(rows: list[tuple[Any, ...]]) -> float:
            return raw_sqlite_table(scratch / "raw-hub-table.db", rows)

        figures += batch_figures("SQLite", batch_rounds("sqlite", hub, headers, sqlite_raw, sqlite_table, args))
        hub.stop()
        if not args.no_postgres:
            pg_url = stack.enter_context(throwaway_database())
            raw_url = stack.enter_context(throwaway_database())
            engine = sa.create_engine(raw_url.replace("postgresql://", "postgresql+psycopg://", 1))
            metadata.create_all(engine, tables=[entities])
            engine.dispose()
            pg_client = register(pg_url)
            pg_hub = start_hub(stack, pg_url)
            pg_headers = bearer(pg_hub, pg_client)
            print(f"  hub (PostgreSQL {pg_url.rsplit('/', 1)[1]}) pid {pg_hub.process.pid if pg_hub.process else '?'}")

            def pg_raw(number: int, rows: list[tuple[str, bytes]]) -> float:
                return raw_postgres(raw_url, f"raw_entities_{number}", rows)

            def pg_table(rows: list[tuple[Any, ...]]) -> float:
                return raw_postgres_table(raw_url, rows)

            figures += batch_figures("PostgreSQL", batch_rounds("postgres", pg_hub, pg_headers, pg_raw, pg_table, args))
            pg_hub.stop()
    if hub is not None:
        hub.stop()

    if "list" in phases:
        print(f"\n[list] loading {args.entities:,} ServiceRequests straight into the hub's SQLite tables ...")
        list_url = f"sqlite:///{scratch}/list.db"
        client = register(list_url)
        rows, seconds = bulk_load(scratch / "list.db", args.entities, client[0])
        matching = sum(round(args.entities * share) for city, share in CITIES if city == "astana") * OPEN_SHARE
        print(f"  {rows:,} rows in entities ({seconds:.0f} s to load); ~{matching:,.0f} match city=astana&status=open")
        list_hub = start_hub(stack, list_url)
        list_headers = bearer(list_hub, client)
        print(f"  hub pid {list_hub.process.pid if list_hub.process else '?'}; {args.requests} x (page 1 + page 2)")
        first, second = list_latency(list_hub, list_headers, args.requests)
        list_hub.stop()
        for label, values in (("page 1", first), ("page 2 (next)", second)):
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            print(f"  {label:<14} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {max(values):6.1f} ms")
            figures.append(Figure(f"list {label} @ {rows:,} rows", f"p50 {p50:.1f} / p99 {p99:.1f} ms", "", None))
    return figures


def batch_figures(engine: str, medians: tuple[float, float, float, float, float]) -> list[Figure]:
    table, plain, hub, ratio, plain_ratio = medians
    insert = "COPY" if engine == "PostgreSQL" else "executemany"
    print(
        f"  {engine} median: raw same table {table:.0f}/s, raw plain table {plain:.0f}/s, hub {hub:.0f}/s, "
        f"ratio {ratio:.3f} (target >= 0.3; to the plain table {plain_ratio:.3f})"
    )
    return [
        Figure(f"batch {engine} raw {insert}, hub's table", f"{table:.0f} rows/s", "", None),
        Figure(f"batch {engine} raw {insert}, plain table", f"{plain:.0f} rows/s", "", None),
        Figure(f"batch {engine} hub", f"{hub:.0f} entities/s", "", None),
        Figure(f"batch {engine} hub/raw same table", f"{ratio:.3f}", ">= 0.3", ratio >= 0.3),
        Figure(f"batch {engine} hub/raw plain table", f"{plain_ratio:.3f}", "", None),
    ]


def summary(figures: list[Figure]) -> None:
    print("\nSummary")
    width = max(len(f.name) for f in figures) + 2
    print(f"  {'figure':<{width}} {'value':<24} {'target':<8} met")
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        print(f"  {f.name:<{width}} {f.value:<24} {f.target:<8} {met}")


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a fast run (~1-2 minutes)")
    parser.add_argument("--phases", default="single,batch,list", help="comma-separated: single, batch, list")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved single-POST rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per single-POST measurement")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None, help="entities per batch (default 20000)")
    parser.add_argument("--batch-rounds", type=int, default=None, help="batches per engine (default 3)")
    parser.add_argument("--entities", type=int, default=None, help="stored entities for the list phase (1000000)")
    parser.add_argument("--requests", type=int, default=None, help="timed list requests per page (default 300)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL batch measurement")
    args = parser.parse_args()
    defaults = (
        {"rounds": 3, "seconds": 1.5, "batch": 5_000, "batch_rounds": 2, "entities": 100_000, "requests": 100}
        if args.quick
        else {"rounds": 5, "seconds": 3.0, "batch": 20_000, "batch_rounds": 3, "entities": 1_000_000, "requests": 300}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures appear as phases finish
    print(HEADER.format(query=LIST_QUERY))
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="qala-bench-") as scratch, contextlib.ExitStack() as stack:
            figures = run(args, Path(scratch), stack)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, temp files and the PostgreSQL database removed", file=sys.stderr)
        raise SystemExit(130) from None
    summary(figures)
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
