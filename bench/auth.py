"""Benchmark the gateway's security path against bare FastAPI endpoints, driven by wrk, in one run.

Two uvicorn processes on loopback (``bench/harness/servers.py``): the hub (SQLite in a temp dir by default, audit
log on, rate limiter on with a limit too high to bite) and a bare FastAPI app. The load generator is wrk
(``bench/harness/wrk.py``): a Python client saturates near 640 requests/s, before a bare endpoint does, and would
measure itself. Three scenarios, each the same request sent to the bare app and to the hub:

token      ``POST /oauth/token`` (client_credentials, client_secret_basic): the hub authenticates the client
           against its hashed secret, signs an RFC 9068 JWT and appends an audit record; the bare endpoint parses
           the form and answers a constant token response.
protected  ``GET /api/v1/whoami`` with a bearer token: the hub verifies the token, applies the rate limit and
           answers the caller; the bare endpoint answers the same JSON, with no check.
jwks       ``GET /oauth/jwks``, public: the hub's middleware (telemetry, input guard, ...) around a cached
           document; the bare endpoint answers the same bytes. The floor of any request through the hub.

Before measuring, one request of each scenario goes to both servers and the answers are compared (the same JSON
for protected and jwks; a bearer token of the same shape for token). Per scenario, rounds interleave bare and hub;
each prints requests/s at saturation and the server's CPU-seconds per request (from ``/proc`` of the uvicorn
process), and the ratios hub/bare of requests/s and bare/hub of CPU per request. The headline is the CPU-cost
ratio: it holds when other jobs take CPU from the server, as they do on a shared two-core machine. wrk's own CPU
share is printed beside the server's, to show which one was the limit.

Usage::

    .venv/bin/python bench/auth.py              # the full run (~2 minutes)
    .venv/bin/python bench/auth.py --quick      # ~30 s
    .venv/bin/python bench/auth.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
        # the hub on a throwaway qala_bench_* database on that server, dropped at the end
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/auth.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path before anything imports
# them, and put the clone on it (at the end) for `bench.harness`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qsl  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import (  # noqa: E402
    Server,
    bearer,
    hub_database,
    hub_env,
    register,
    start_bare,
    start_hub,
)
from bench.harness.wrk import Result, Scenario, fixed_script, measure, open_loadgen, summary  # noqa: E402

ANSWERS_ENV = "QALA_BENCH_ANSWERS"
"""The bare app's answers (JSON: the hub's whoami and JWKS bodies, and a token response), set by the bench."""
FORM = b"grant_type=client_credentials"


def bare_app() -> FastAPI:
    """The ceiling: FastAPI answering the three paths with the hub's own answers, and doing nothing else."""
    answers = orjson.loads(os.environ.get(ANSWERS_ENV, "{}"))
    token, whoami, jwks = (orjson.dumps(answers.get(name)) for name in ("token", "whoami", "jwks"))
    app = FastAPI()

    def json_response(body: bytes) -> Response:
        return Response(body, media_type="application/json")

    @app.post("/oauth/token")
    async def issue(request: Request) -> Response:
        parse_qsl((await request.body()).decode())
        return json_response(token)

    @app.get("/api/v1/whoami")
    async def caller() -> Response:
        return json_response(whoami)

    @app.get("/oauth/jwks")
    async def keys() -> Response:
        return json_response(jwks)

    return app


def scenarios(client: tuple[str, str], headers: dict[str, str]) -> list[Scenario]:
    basic = "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    form = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
    return [
        Scenario(
            "token",
            "client_credentials with client_secret_basic: authenticate, sign, audit",
            "/oauth/token",
            200,
            lambda: fixed_script(form, "POST", FORM),
        ),
        Scenario(
            "protected", "bearer token verified, rate limit", "/api/v1/whoami", 200, lambda: fixed_script(headers)
        ),
        Scenario("jwks", "public GET through the hub's middleware", "/oauth/jwks", 200, lambda: fixed_script({})),
    ]


def hub_answers(hub: Server, client: tuple[str, str], headers: dict[str, str]) -> dict[str, Any]:
    """What the hub answers on the three paths, for the bare app to answer the same."""
    token = httpx.post(f"{hub.base}/oauth/token", content=FORM, auth=client, headers=_form_type(), timeout=10)
    whoami = httpx.get(f"{hub.base}/api/v1/whoami", headers=headers, timeout=10)
    jwks = httpx.get(f"{hub.base}/oauth/jwks", timeout=10)
    for response in (token, whoami, jwks):
        if response.status_code != 200:
            raise SystemExit(f"{response.url} answered {response.status_code}: {response.text[:300]}")
    return {"token": token.json(), "whoami": whoami.json(), "jwks": jwks.json()}


def _form_type() -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded"}


def preflight(bare: Server, hub: Server, client: tuple[str, str], headers: dict[str, str]) -> None:
    """One request of each scenario to both servers: 200 everywhere and the same answers (tokens differ in value,
    so for them the same keys and token type)."""
    for path in ("/api/v1/whoami", "/oauth/jwks"):
        answers = [httpx.get(server.base + path, headers=headers, timeout=10) for server in (bare, hub)]
        if any(a.status_code != 200 for a in answers) or answers[0].json() != answers[1].json():
            raise SystemExit(f"{path}: the bare server and the hub answer differently")
    tokens = [
        httpx.post(server.base + "/oauth/token", content=FORM, auth=client, headers=_form_type(), timeout=10)
        for server in (bare, hub)
    ]
    if any(t.status_code != 200 for t in tokens) or tokens[0].json().keys() != tokens[1].json().keys():
        raise SystemExit("/oauth/token: the bare server and the hub answer differently")


def run(args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> list[Result]:
    loadgen = open_loadgen(args.connections, scratch)
    database_url, database = hub_database(stack, scratch, args.database_url)
    client = register(database_url, ["service-requests:read"])
    hub = start_hub(stack, database_url)
    loadgen.pin(hub)
    headers = bearer(hub, client)
    env = {**hub_env(database_url), ANSWERS_ENV: orjson.dumps(hub_answers(hub, client, headers)).decode()}
    bare = start_bare(stack, "bench.auth:bare_app", "/oauth/jwks", env)
    loadgen.pin(bare)
    preflight(bare, hub, client, headers)
    print(f"servers: bare pid {bare.pid}, hub pid {hub.pid} on {database}")
    print(f"{args.rounds} interleaved rounds of {args.seconds} s per server, {args.warmup} s warm-up each")
    results = []
    for scenario in scenarios(client, headers):
        if scenario.name in args.scenarios.split(","):
            results.append(measure(loadgen, bare, hub, scenario, args.rounds, args.seconds, args.warmup))
    summary(results, f"hub on {database}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (~30 s)")
    parser.add_argument("--scenarios", default="token,protected,jwks", help="comma-separated: token, protected, jwks")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per scenario (default 5)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per wrk run (default 4)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per server and scenario")
    parser.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server's URL: the hub runs on a throwaway database there"
    )
    args = parser.parse_args()
    defaults = {"rounds": 2, "seconds": 2, "warmup": 1} if args.quick else {"rounds": 5, "seconds": 4, "warmup": 2}
    fill_defaults(args, defaults)
    results = run_bench("auth", lambda scratch, stack: run(args, scratch, stack))
    exit_if_failed(sum(result.failed for result in results))


if __name__ == "__main__":
    main()
