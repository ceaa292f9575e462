"""Benchmark the hub's hottest HTTP paths against bare FastAPI endpoints, driven by wrk, in one run.

Every server is ``python -m uvicorn <app> --factory`` with the hub's settings (one process, 127.0.0.1, warning
log level, no access log; ``bench/harness/servers.py``). The load generator is wrk (a C program, Debian's
``wrk`` package; ``bench/harness/wrk.py``), not Python: a Python client saturates long before a bare uvicorn
endpoint does, and then measures itself. Three scenarios, each the same request sent to a bare endpoint and to the hub:

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
# them, and put the clone on it (at the end) for `bench.harness`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import (  # noqa: E402
    EXAMPLE,
    Server,
    bearer,
    hub_database,
    hub_env,
    post_batch,
    register,
    start_bare,
    start_hub,
)
from bench.harness.wrk import (  # noqa: E402
    Result,
    Scenario,
    fixed_script,
    measure,
    open_loadgen,
    post_script,
    summary,
)
from schemas.registry import SchemaRegistry  # noqa: E402

COLLECTION = "/api/v1/service-requests"
LIST_PATH = f"{COLLECTION}?city=astana&limit=100"
SEED_ENV = "QALA_BENCH_SEEDED"
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


# -- scenarios ----------------------------------------------------------------------------------------------


def post_scenario(headers: dict[str, str]) -> Scenario:
    """The POST of the schema's example ServiceRequest, a new id per request; ``bench/exchange.py`` runs it too."""
    posted = {"Authorization": headers["Authorization"], "Content-Type": "application/json"}
    head, tail = orjson.dumps({**EXAMPLE, "id": "urn:ngsi-ld:ServiceRequest:astana:@@ID@@"}).split(b"@@ID@@")

    def posting() -> str:
        return post_script(COLLECTION, posted, head, tail, f"W{secrets.token_hex(4)}")

    label = "authenticated, validated, stored and audited POST"
    return Scenario("post", label, COLLECTION, 201, posting, TARGETS["post"])


def scenarios(headers: dict[str, str], seeded: int) -> list[Scenario]:
    token = {"Authorization": headers["Authorization"]}
    item = f"{COLLECTION}/{quote(seed_entity(seeded // 2)['id'], safe='')}"

    def reading() -> str:
        return fixed_script(token)

    return [
        Scenario("get", "authenticated GET of one entity", item, 200, reading, TARGETS["get"]),
        post_scenario(headers),
        Scenario("list", f"list page of 100, {LIST_PATH.split('?')[1]}", LIST_PATH, 200, reading, TARGETS["list"]),
    ]


def preflight(bare: Server, hub: Server, headers: dict[str, str], scenario: Scenario) -> None:
    """One request of ``scenario`` to each server: the expected status, and the same entities in both answers."""
    answers: list[Any] = []
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


# -- the run ------------------------------------------------------------------------------------------------


def seed(hub: Server, headers: dict[str, str], count: int) -> None:
    rows = [(entity["id"], orjson.dumps(entity)) for entity in map(seed_entity, range(count))]
    for start in range(0, count, 5000):
        post_batch(hub, headers, rows[start : start + 5000])


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> list[Result]:
    loadgen = open_loadgen(args.connections, scratch)
    database_url, database = hub_database(stack, scratch, args.database_url)
    client = register(database_url)
    hub = start_hub(stack, database_url)
    headers = bearer(hub, client)
    loadgen.pin(hub)
    started = time.perf_counter()
    seed(hub, headers, args.entities)
    print(f"hub on {database}: {args.entities:,} ServiceRequests seeded in {time.perf_counter() - started:.1f} s")
    env = {**hub_env(database_url), SEED_ENV: str(args.entities)}
    bare = start_bare(stack, "bench.http_load:bare_app", "/docs", env)
    loadgen.pin(bare)
    print(f"servers: bare pid {bare.pid}, hub pid {hub.pid}")
    print(f"{args.rounds} interleaved rounds of {args.seconds} s per server, {args.warmup} s warm-up each")
    results = []
    for scenario in scenarios(headers, args.entities):
        if scenario.name not in args.scenarios.split(","):
            continue
        preflight(bare, hub, headers, scenario)
        results.append(measure(loadgen, bare, hub, scenario, args.rounds, args.seconds, args.warmup))
    summary(results, f"hub on {database}")
    return results


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
    fill_defaults(args, defaults)
    results = run_bench("http", lambda scratch, stack: run(args, scratch, stack))
    exit_if_failed(sum(result.failed for result in results))


if __name__ == "__main__":
    main()
