"""Benchmark the exchange API against bare baselines, and how its cost grows with the entities stored, in one run.

Every server is ``python -m uvicorn <app> --factory`` with the same settings (``bench/harness/servers.py``). Three
phases, each printing its figures as it finishes:

1. single   ``POST /api/v1/service-requests`` driven by wrk (``bench/harness/wrk.py``), the scenario of
            ``bench/http_load.py`` (no second copy here): the hub (bearer token, rate limiter with a limit too high
            to bite, JSON Schema validation, persistence and audit record in one transaction; SQLite in a temp
            dir) against the bare FastAPI endpoint of that bench, which parses the JSON and answers 201. Rounds
            interleave; each prints requests/s at saturation and server CPU-seconds per request of both, and the
            ratios. The headline is the CPU-cost ratio bare/hub (target >= 0.4).
2. batch    ``POST /api/v1/batch`` (NDJSON, one big request per round: a Python client is fine here, it sends and
            counts result lines while the hub works) entities/s, at each stored size (default 10,000 / 100,000 /
            1,000,000 entities), on SQLite and on PostgreSQL. Beside it, the hub's CPU milliseconds per entity (its
            uvicorn process; on PostgreSQL the database server's own processes are not counted), and a raw insert,
            without the hub, of rows shaped as the hub stores them (payload and metadata columns, prepared before
            the clock starts) into the same table of the same database, at the same size: SQLite
            ``executemany``, PostgreSQL ``COPY``. Target hub/raw >= 0.3 at every size.
3. list     p50/p99 latency of ``GET /api/v1/service-requests?city=astana&status=open&limit=100`` and of the page
            behind its ``next`` link, at each stored size, on SQLite and PostgreSQL; target p99 < 20 ms at
            1,000,000. Timed by wrk with one connection (``-c1 -t1``, latency percentiles from its histogram), each
            page for a few seconds; wrk's own CPU share is printed beside the hub's to show the client was not the
            limit, and the hub's CPU milliseconds per request.

The stored entities are ServiceRequests of three cities (half Astana) bulk-loaded straight into the hub's
``entities`` table (SQLite ``executemany``; PostgreSQL ``COPY``, then ``ANALYZE``) while the hub is stopped; the
hub is then started on the database. Sizes grow in place (10k, then 90k more, then 900k more), the rows the batch
phase wrote counting towards the next size. PostgreSQL runs on a throwaway ``qala_bench_*`` database, dropped at
the end (also on Ctrl-C).

Usage::

    .venv/bin/python bench/exchange.py            # the full run (~5 minutes on 2 cores)
    .venv/bin/python bench/exchange.py --quick    # sizes 1k / 10k / 100k, ~2 minutes
    .venv/bin/python bench/exchange.py --phases list --sizes 10000,100000,1000000 --engines postgresql
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/exchange.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path before anything imports
# them, and put the clone on it (at the end) for `bench.harness`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import secrets  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import (  # noqa: E402
    EXAMPLE,
    Server,
    bearer,
    hub_env,
    post_batch,
    register,
    start_bare,
    start_hub,
    throwaway_database,
)
from bench.harness.wrk import Loadgen, Run, fixed_script, measure, open_loadgen, summary  # noqa: E402
from bench.http_load import post_scenario, preflight  # noqa: E402
from gateway.store.records import bounding_box, content_hash, posix_seconds  # noqa: E402
from gateway.store.tables import SEQUENCE_ROW, entities, entity_sequence  # noqa: E402

LIST_QUERY = "city=astana&status=open&limit=100"
LIST_PATH = f"/api/v1/service-requests?{LIST_QUERY}"
LIST_TARGET_MS = 20.0
LIST_TARGET_SIZE = 1_000_000
BATCH_TARGET = 0.3
MARK = "@@ID@@"


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


ROW_COLUMNS = (
    *("id", "type", "collection", "city", "payload", "content_hash", "version", "seq", "deleted", "date_modified"),
    *("min_lon", "min_lat", "max_lon", "max_lat", "received_at", "created_at", "client_id", "member"),
    "schema_version",
)
INSERT_ROW = f"INSERT INTO {entities.name} ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
CITIES = ("astana",) * 5 + ("almaty",) * 3 + ("shymkent",) * 2
"""The city of stored entity n is CITIES[n % 10]; 4 in 10 of each city's entities are open, the rest closed."""


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


def stored_rows(numbers: range, first_seq: int, publisher: tuple[str, str | None]) -> Iterator[tuple[Any, ...]]:
    """Rows of the stored entities ``numbers``, with seqs from ``first_seq`` on."""
    now = time.time()
    for seq, n in enumerate(numbers, start=first_seq):
        entity = dict(EXAMPLE)
        entity["city"] = city = CITIES[n % 10]
        entity["id"] = f"urn:ngsi-ld:ServiceRequest:{city}:L{n:07d}"
        entity["serviceRequestId"] = f"L{n:07d}"
        entity["dateModified"] = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T09:{n % 60:02d}:07+05:00"
        if (n // 10) % 10 >= 4:
            entity.update(status="closed", statusDetail="resolved", dateClosed=entity["dateModified"])
        yield row_of(entity, seq=seq, now=now, publisher=publisher)


def check_columns() -> None:
    differ = {c.name for c in entities.columns} ^ set(ROW_COLUMNS)
    if differ:
        raise SystemExit(f"gateway/store/tables.py changed: columns {sorted(differ)} differ from this bench")


# -- the hub's database, written without the hub ------------------------------------------------------------


class Store:
    """The hub's database seen from outside the hub: how many entities, the change feed's head, and raw inserts
    that keep that head where ``EntityStore`` expects it (the last seq written)."""

    engine = ""
    insert = ""
    mark = "?"
    """The driver's parameter marker."""
    url = ""

    def query(self, sql: str, *params: Any) -> Any:
        raise NotImplementedError

    def write(self, rows: Iterable[tuple[Any, ...]], last_seq: int, bulk: bool) -> None:
        raise NotImplementedError

    def count(self) -> int:
        return int(self.query(f"SELECT count(*) FROM {entities.name}"))

    def head(self) -> int:
        value = self.query(f"SELECT value FROM {entity_sequence.name} WHERE id = {SEQUENCE_ROW}")
        return int(value or 0)

    def member(self, client_id: str) -> str | None:
        member = self.query(f"SELECT member FROM clients WHERE client_id = {self.mark}", client_id)
        return None if member is None else str(member)

    def insert_rate(self, rows: list[tuple[Any, ...]]) -> float:
        """Rows/s of writing ``rows`` (seqs after the head) in one transaction, as the hub's pragmas/driver would."""
        started = time.perf_counter()
        self.write(rows, rows[-1][ROW_COLUMNS.index("seq")], bulk=False)
        return len(rows) / (time.perf_counter() - started)


class SqliteStore(Store):
    engine, insert = "SQLite", "executemany"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def query(self, sql: str, *params: Any) -> Any:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            row = db.execute(sql, params).fetchone()
        return row[0] if row else None

    def write(self, rows: Iterable[tuple[Any, ...]], last_seq: int, bulk: bool) -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
            # the hub's pragmas when timed; a bulk load (not timed) skips the fsyncs
            pragmas = ("synchronous=OFF", "cache_size=-262144") if bulk else ("synchronous=NORMAL", "cache_size=-32768")
            for pragma in pragmas:
                db.execute(f"PRAGMA {pragma}")
            db.executemany(INSERT_ROW, rows)
            db.execute(
                f"INSERT INTO {entity_sequence.name} (id, value) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET value = excluded.value",
                (SEQUENCE_ROW, last_seq),
            )
            db.commit()


class PostgresStore(Store):
    engine, insert, mark = "PostgreSQL", "COPY", "%s"

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, sql: str, *params: Any) -> Any:
        with psycopg.connect(self.url) as db:
            row = db.execute(sql, params).fetchone()
        return row[0] if row else None

    def write(self, rows: Iterable[tuple[Any, ...]], last_seq: int, bulk: bool) -> None:
        with psycopg.connect(self.url) as db:
            with (
                db.cursor() as cursor,
                cursor.copy(f"COPY {entities.name} ({', '.join(ROW_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            db.execute(
                f"INSERT INTO {entity_sequence.name} (id, value) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET value = excluded.value",
                (SEQUENCE_ROW, last_seq),
            )
            db.commit()
            if bulk:  # the planner's statistics, as autovacuum would gather them on a live database
                db.execute(f"ANALYZE {entities.name}")
                db.commit()


def top_up(store: Store, size: int, loaded: int, publisher: tuple[str, str | None]) -> int:
    """Bulk-load entities until ``store`` holds ``size``; the number of bulk-loaded entities so far."""
    missing = size - store.count()
    if missing <= 0:
        return loaded
    first = store.head() + 1
    started = time.perf_counter()
    store.write(stored_rows(range(loaded, loaded + missing), first, publisher), first + missing - 1, bulk=True)
    print(f"  {store.engine}: {missing:,} entities bulk-loaded in {time.perf_counter() - started:.0f} s")
    return loaded + missing


# -- phase 1: single-entity POST ----------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: str
    target: str = ""
    met: bool | None = None


def single_phase(args: argparse.Namespace, scratch: Path, loadgen: Loadgen) -> list[Figure]:
    url = f"sqlite:///{scratch}/single.db"
    client = register(url)
    with contextlib.ExitStack() as stack:
        hub = start_hub(stack, url)
        loadgen.pin(hub)
        headers = bearer(hub, client)
        bare = start_bare(stack, "bench.http_load:bare_app", "/docs", hub_env(url))
        loadgen.pin(bare)
        scenario = post_scenario(headers)
        preflight(bare, hub, headers, scenario)
        print(f"\n[single] hub pid {hub.pid} (SQLite), bare pid {bare.pid}; {args.rounds} rounds x {args.seconds} s")
        result = measure(loadgen, bare, hub, scenario, args.rounds, args.seconds, args.warmup)
    summary([result], "hub on SQLite in a temp dir")
    cost = result.median(lambda r: r.cost_ratio)
    return [
        Figure("single POST bare", f"{result.median(lambda r: r.bare.rate):.0f} req/s"),
        Figure("single POST hub", f"{result.median(lambda r: r.hub.rate):.0f} req/s"),
        Figure("single POST req/s hub/bare", f"{result.median(lambda r: r.rate_ratio):.2f}"),
        Figure("single POST CPU cost bare/hub", f"{cost:.2f}", f">= {scenario.target}", result.met),
    ]


# -- phases 2 and 3, at each stored size --------------------------------------------------------------------


@dataclass
class Latency:
    page: str
    run: Run


def list_latency(loadgen: Loadgen, hub: Server, headers: dict[str, str], seconds: float) -> list[Latency]:
    """Page 1 and the page behind its ``next`` link, each checked once and then timed by wrk on one connection."""
    first = httpx.get(hub.base + LIST_PATH, headers=headers, timeout=60)
    if first.status_code != 200 or len(first.json()["items"]) != 100 or not first.json()["next"]:
        raise SystemExit(f"list answered {first.status_code} without a full page and a next link: {first.text[:300]}")
    following = first.json()["next"]
    second = httpx.get(following, headers=headers, timeout=60)
    if second.status_code != 200 or len(second.json()["items"]) != 100:
        raise SystemExit(f"the next page answered {second.status_code}: {second.text[:300]}")
    measured = []
    for page, path in (("page 1", LIST_PATH), ("page 2 (next)", following.removeprefix(hub.base))):
        loadgen.run(hub, fixed_script(headers), path, 1, connections=1)  # warm-up: caches, the connection
        measured.append(Latency(page, loadgen.run(hub, fixed_script(headers), path, seconds, connections=1)))
    return measured


@dataclass
class Batch:
    hub: float
    raw: float
    cpu_ms: float
    """The hub's CPU milliseconds per entity."""


def batch_rounds(store: Store, hub: Server, headers: dict[str, str], args: argparse.Namespace) -> list[Batch]:
    """Hub batches and raw inserts of as many new rows into the same table, interleaved, fresh ids each."""
    template = Template()
    measured = []
    for _ in range(args.batch_rounds):
        rows = template.rows(f"B{secrets.token_hex(3)}", args.batch)
        cpu = hub.cpu_seconds()
        rate = post_batch(hub, headers, rows)
        cpu_ms = (hub.cpu_seconds() - cpu) / len(rows) * 1000
        first, now = store.head() + 1, time.time()
        raw_rows = [
            row_of(orjson.loads(line), seq=first + i, now=now, publisher=("bench-raw", None))
            for i, (_, line) in enumerate(template.rows(f"R{secrets.token_hex(3)}", args.batch))
        ]
        measured.append(Batch(rate, store.insert_rate(raw_rows), cpu_ms))
    return measured


@dataclass
class Step:
    """What one engine measured at one stored size."""

    engine: str
    size: int
    latencies: list[Latency]
    batches: list[Batch]

    def batch(self, value: str) -> float:
        return float(statistics.median(getattr(b, value) for b in self.batches))


def grow(store: Store, args: argparse.Namespace, phases: set[str], loadgen: Loadgen) -> list[Step]:
    """Every size in turn on one database: top it up with the hub stopped, start the hub on it, measure."""
    client = register(store.url)  # creates the tables
    publisher = (client[0], store.member(client[0]))
    loaded, steps = 0, []
    for size in args.sizes:
        loaded = top_up(store, size, loaded, publisher)
        held = store.count()
        with contextlib.ExitStack() as stack:
            hub = start_hub(stack, store.url)
            loadgen.pin(hub)
            headers = bearer(hub, client)
            print(f"  {store.engine} holds {held:,} entities; hub pid {hub.pid}")
            step = Step(store.engine, held, [], [])
            if "list" in phases:
                step.latencies = list_latency(loadgen, hub, headers, args.list_seconds)
                for latency in step.latencies:
                    run = latency.run
                    print(
                        f"    list {latency.page:<14} p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                        f"{run.requests:5d} requests  hub {run.cpu_ms:5.2f} CPU ms/req ({run.server_share:4.0%} "
                        f"of a core), wrk {run.wrk_share:4.0%}" + (f"  [{run.failed} FAILED]" if run.failed else "")
                    )
            if "batch" in phases:
                step.batches = batch_rounds(store, hub, headers, args)
                for number, batch in enumerate(step.batches, start=1):
                    print(
                        f"    batch round {number}: hub {batch.hub:7.0f} entities/s ({batch.cpu_ms:.3f} CPU ms each)"
                        f"  raw {store.insert} same table {batch.raw:7.0f} rows/s  hub/raw {batch.hub / batch.raw:.3f}"
                    )
        steps.append(step)
    return steps


def growth_figures(steps: list[Step]) -> list[Figure]:
    figures = []
    for step in steps:
        where = f"{step.engine} @ {step.size:,}"
        for latency in step.latencies:
            run = latency.run
            target = step.size >= LIST_TARGET_SIZE
            figures.append(
                Figure(
                    f"list {latency.page} {where}",
                    f"p50 {run.p50_ms:.1f} / p99 {run.p99_ms:.1f} ms",
                    f"p99 < {LIST_TARGET_MS:.0f}" if target else "",
                    run.p99_ms < LIST_TARGET_MS if target else None,
                )
            )
        if step.batches:
            ratio = statistics.median(b.hub / b.raw for b in step.batches)
            figures += [
                Figure(f"batch hub {where}", f"{step.batch('hub'):.0f} ent/s, {step.batch('cpu_ms'):.3f} CPU ms each"),
                Figure(
                    f"batch hub/raw same table {where}", f"{ratio:.3f}", f">= {BATCH_TARGET}", ratio >= BATCH_TARGET
                ),
            ]
    return figures


def growth_table(steps: list[Step]) -> None:
    """The main figures at each size, one row per engine and size, so how the cost grows is visible."""
    print("\nGrowth (list: wrk -c1 latency; batch: medians of the rounds)")
    print(
        f"  {'engine':<10} {'stored':>9}  {'page 1 p50/p99 ms':>17}  {'page 2 p50/p99 ms':>17}  "
        f"{'batch ent/s':>11} {'CPU ms/ent':>10} {'hub/raw':>7}"
    )
    for step in steps:
        pages = [f"{lat.run.p50_ms:6.2f} /{lat.run.p99_ms:7.2f}" for lat in step.latencies] or ["", ""]
        batch = (
            f"{step.batch('hub'):>11.0f} {step.batch('cpu_ms'):>10.3f} "
            f"{statistics.median(b.hub / b.raw for b in step.batches):>7.3f}"
            if step.batches
            else ""
        )
        print(f"  {step.engine:<10} {step.size:>9,}  {pages[0]:>17}  {pages[1]:>17}  {batch}")


def summary_table(figures: list[Figure]) -> None:
    print("\nSummary")
    width = max(len(f.name) for f in figures) + 2
    print(f"  {'figure':<{width}} {'value':<34} {'target':<9} met")
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        print(f"  {f.name:<{width}} {f.value:<34} {f.target:<9} {met}")


# -- the run ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> tuple[list[Figure], int]:
    phases = set(args.phases.split(","))
    loadgen = open_loadgen(args.connections, scratch)
    figures: list[Figure] = []
    if "single" in phases:
        figures += single_phase(args, scratch, loadgen)
    steps: list[Step] = []
    if phases & {"batch", "list"}:
        check_columns()
        sizes = " / ".join(f"{size:,}" for size in args.sizes)
        print(f"\n[{'+'.join(sorted(phases & {'batch', 'list'}))}] at {sizes} stored ServiceRequests")
        engines = set(args.engines.split(",")) - ({"postgresql"} if args.no_postgres else set())
        stores: list[Store] = [SqliteStore(scratch / "grow.db")] if "sqlite" in engines else []
        if "postgresql" in engines:
            stores.append(PostgresStore(stack.enter_context(throwaway_database())))
        for store in stores:
            steps += grow(store, args, phases, loadgen)
        growth_table(steps)
        figures += growth_figures(steps)
    failed = sum(lat.run.failed for step in steps for lat in step.latencies)
    return figures, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1k/10k/100k, short runs (~2 minutes)")
    parser.add_argument("--phases", default="single,batch,list", help="comma-separated: single, batch, list")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved single-POST rounds (default 5)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per single-POST wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of single-POST warm-up per server")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections for the single POST")
    parser.add_argument("--sizes", default=None, help="stored entities, comma-separated (default 10k,100k,1M)")
    parser.add_argument("--batch", type=int, default=None, help="entities per batch (default 10000)")
    parser.add_argument("--batch-rounds", type=int, default=None, help="batches per size and engine (default 2)")
    parser.add_argument("--list-seconds", type=int, default=None, help="seconds of wrk -c1 per page and size")
    parser.add_argument("--engines", default="sqlite,postgresql", help="for batch and list: sqlite, postgresql")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only for the batch and list phases")
    args = parser.parse_args()
    defaults = (
        {"rounds": 2, "seconds": 2, "warmup": 1, "sizes": "1000,10000,100000", "batch": 2000, "batch_rounds": 1}
        if args.quick
        else {"rounds": 5, "seconds": 5, "warmup": 2, "sizes": "10000,100000,1000000", "batch": 10_000}
    )
    defaults = {"batch_rounds": 2, "list_seconds": 2 if args.quick else 5, **defaults}
    fill_defaults(args, defaults)
    args.sizes = sorted(int(size) for size in str(args.sizes).split(","))
    if args.sizes[0] < 1000 and "list" in args.phases:
        parser.error("--sizes: the list phase needs at least 1000 entities (a page 2 of city=astana&status=open)")
    figures, failed = run_bench("exchange", lambda scratch, stack: run(args, scratch, stack))
    summary_table(figures)
    exit_if_failed(failed, "list requests")


if __name__ == "__main__":
    main()
