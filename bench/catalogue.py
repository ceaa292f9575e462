"""``package_search`` at 1,000 / 10,000 / 100,000 datasets against bare FastAPI, driven by wrk, in one run.

Builds a SQLite catalogue of generated static datasets (titles and notes in kk/ru/en, tags, organisations, themes,
resources) plus the live datasets of the bundled examples, growing it in place through the sizes (1k, then 9k more,
then 90k more). At each size three uvicorn servers run on loopback (``bench/harness/servers.py``): the catalogue
with its search-result cache (``CatalogueSettings.search_cache_size``, valid until the next write), the catalogue
without it (every query searched in SQLite: how the search cost grows), and a bare FastAPI endpoint answering the
catalogue's own answer to one of the queries (the ceiling: the framework and one answer's bytes). The load generator
is wrk (``bench/harness/wrk.py``), cycling through a mix of queries as a portal and ckanapi send them: free text in
the three languages, filters, facets and paging.

Per size and catalogue: requests/s at saturation and server CPU-seconds per request (from ``/proc``) beside the
bare endpoint's, rounds interleaved, with the ratios hub/bare of requests/s and bare/hub of CPU per request; and
the latency (p50/p99) of the same mix from one connection (``wrk -c1``). Targets: median (p50) < 20 ms without the
cache at every size; requests/s >= 0.3 x bare with the cache. The growth table at the end shows each figure at
each size.

Usage::

    .venv/bin/python bench/catalogue.py                       # sizes 1k / 10k / 100k (~12 minutes: 6 build 100k)
    .venv/bin/python bench/catalogue.py --quick               # sizes 50 / 500 / 5k (~1.5 minutes)
    .venv/bin/python bench/catalogue.py --sizes 10000 --rounds 5
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the package it measures: keep its own folder off the import path, and put the clone
# on it (at the end) for `bench.harness`.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import httpx  # noqa: E402
from fastapi import FastAPI, Response  # noqa: E402

from bench.harness.runner import exit_if_failed, fill_defaults, run_bench  # noqa: E402
from bench.harness.servers import Server, hub_env, start_bare  # noqa: E402
from bench.harness.wrk import DONE, Loadgen, Result, Run, Scenario, lua_string, measure, open_loadgen  # noqa: E402
from catalogue.app import create_app  # noqa: E402
from catalogue.cli import example_source  # noqa: E402
from catalogue.packages import finish, group_dict, normalise, now  # noqa: E402
from catalogue.service import Catalogue, CatalogueSettings  # noqa: E402
from gateway.db import make_engine  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

MEDIAN_TARGET_MS = 20.0
RATE_TARGET = 0.3
SEARCH = "/api/3/action/package_search"
DATABASE_ENV, CACHE_ENV, ANSWER_ENV = "QALA_BENCH_CATALOGUE", "QALA_BENCH_CACHE", "QALA_BENCH_ANSWER"

WORDS = {
    "en": [
        "air",
        "quality",
        "water",
        "supply",
        "bus",
        "route",
        "parking",
        "heat",
        "network",
        "school",
        "budget",
        "roads",
        "trees",
        "noise",
        "waste",
        "clinic",
        "library",
        "park",
        "lighting",
        "snow",
        "removal",
        "traffic",
        "accident",
        "tram",
        "metro",
        "bicycle",
        "lane",
        "playground",
        "hospital",
        "pharmacy",
        "kindergarten",
        "sports",
        "ground",
        "pollution",
        "river",
        "flood",
        "energy",
        "meter",
        "gas",
        "tariff",
        "election",
        "census",
        "population",
        "housing",
        "permit",
        "tax",
        "fine",
        "museum",
        "theatre",
        "tourism",
        "hotel",
        "market",
        "price",
        "wage",
        "employment",
        "crime",
        "police",
        "fire",
        "station",
        "ambulance",
    ],
    "ru": [
        "воздух",
        "вода",
        "автобус",
        "маршрут",
        "парковка",
        "тепло",
        "сеть",
        "школа",
        "бюджет",
        "дороги",
        "деревья",
        "шум",
        "отходы",
        "поликлиника",
        "библиотека",
        "парк",
        "освещение",
        "снег",
        "уборка",
        "движение",
        "авария",
        "трамвай",
        "метро",
        "велосипед",
        "полоса",
        "площадка",
        "больница",
        "аптека",
        "детсад",
        "спорт",
        "загрязнение",
        "река",
        "паводок",
        "энергия",
        "счётчик",
        "газ",
        "тариф",
        "выборы",
        "перепись",
        "население",
        "жильё",
        "разрешение",
        "налог",
        "штраф",
        "музей",
        "театр",
        "туризм",
        "гостиница",
        "рынок",
        "цена",
        "зарплата",
        "занятость",
        "преступность",
        "полиция",
        "пожар",
        "станция",
        "скорая",
    ],
    "kk": [
        "ауа",
        "су",
        "автобус",
        "бағыт",
        "тұрақ",
        "жылу",
        "желі",
        "мектеп",
        "бюджет",
        "жолдар",
        "ағаштар",
        "шу",
        "қалдық",
        "емхана",
        "кітапхана",
        "саябақ",
        "жарық",
        "қар",
        "тазалау",
        "қозғалыс",
        "апат",
        "трамвай",
        "метро",
        "велосипед",
        "жолақ",
        "алаң",
        "аурухана",
        "дәріхана",
        "балабақша",
        "спорт",
        "ластану",
        "өзен",
        "су_тасқыны",
        "энергия",
        "есептегіш",
        "газ",
        "тариф",
        "сайлау",
        "санақ",
        "халық",
        "тұрғын_үй",
        "рұқсат",
        "салық",
        "айыппұл",
        "мұражай",
        "театр",
        "туризм",
        "қонақүй",
        "базар",
        "баға",
        "жалақы",
        "жұмыспен_қамту",
        "қылмыс",
        "полиция",
        "өрт",
        "бекет",
        "жедел",
    ],
}
# Zipf-like: a few words are in many titles, most in few, as in real catalogues
WEIGHTS = {locale: [1 / (rank + 1) for rank in range(len(words))] for locale, words in WORDS.items()}
ORGS = [f"org-{n:02d}" for n in range(20)]
THEMES = ["mobility", "environment", "utilities", "safety", "services", "finance"]
FORMATS = ["CSV", "JSON", "XLSX", "PDF", "GeoJSON"]


async def build(database: Path, start: int, stop: int) -> None:
    """Add the generated datasets ``start`` .. ``stop - 1`` to the catalogue in ``database`` (made at 0)."""
    registry = SchemaRegistry.load()
    engine = make_engine(f"sqlite:///{database}")
    catalogue = Catalogue(
        engine, example_source(registry), registry, CatalogueSettings(refresh_seconds=0), create_tables=start == 0
    )
    await catalogue.open()
    async with engine.begin() as connection:
        if start == 0:
            for org in ORGS:
                await catalogue.store.save_group(
                    connection, group_dict({"name": org, "title": org.upper()}, is_organization=True)
                )
        orgs = await catalogue.store.groups(connection, "organization")
        groups = await catalogue.store.groups(connection, "group")
        for n in range(start, stop):
            rng = random.Random(n)  # dataset n is the same whichever size it was added at
            titles = {loc: " ".join(rng.choices(words, WEIGHTS[loc], k=4)) for loc, words in WORDS.items()}
            doc = normalise(
                {
                    "name": f"dataset-{n:06d}",
                    "title_translated": titles,
                    "notes_translated": {
                        loc: " ".join(rng.choices(words, WEIGHTS[loc], k=10)) for loc, words in WORDS.items()
                    },
                    "tags": rng.sample(WORDS["en"], 3),
                    "groups": [{"name": rng.choice(THEMES)}],
                    "resources": [
                        {"url": f"https://data.example.kz/{n}/{i}", "format": rng.choice(FORMATS)}
                        for i in range(rng.randint(1, 3))
                    ],
                }
            )
            doc["id"] = f"00000000-0000-4000-8000-{n:012d}"
            moment = now()
            full = finish(doc, organization=orgs[rng.choice(ORGS)], groups=groups, created=moment, modified=moment)
            await catalogue.store.save_dataset(connection, full, live=False, created=moment, modified=moment)
    await catalogue.close()
    await engine.dispose()


def catalogue_app() -> FastAPI:
    """The catalogue on the database and with the cache size the bench puts in the environment."""
    registry = SchemaRegistry.load()
    settings = CatalogueSettings(refresh_seconds=0, search_cache_size=int(os.environ[CACHE_ENV]))
    engine = make_engine(f"sqlite:///{os.environ[DATABASE_ENV]}")
    return create_app(engine, example_source(registry), registry, settings, create_tables=False)


def bare_app() -> FastAPI:
    """The ceiling: one endpoint answering the catalogue's own answer to one query, whatever the query."""
    answer = os.environ.get(ANSWER_ENV, '{"help": "bare", "success": true, "result": {"count": 0, "results": []}}')
    app = FastAPI()

    @app.get(SEARCH)
    async def search() -> Response:
        return Response(answer.encode(), media_type="application/json")

    return app


def queries(n: int) -> list[dict[str, str]]:
    rng = random.Random(2)
    out = []
    for _ in range(n):
        kind = rng.random()
        locale = rng.choice(list(WORDS))
        query: dict[str, str] = {"q": rng.choice(WORDS[locale]), "rows": "10"}
        if kind < 0.3:
            query["facet.field"] = '["organization","groups","res_format"]'
        elif kind < 0.5:
            query["fq"] = f"organization:{rng.choice(ORGS)}"
        elif kind < 0.6:
            query = {"q": "*:*", "rows": "20", "start": str(rng.randrange(0, 5000)), "sort": "name asc"}
        out.append(query)
    return out


def cycling_script(paths: list[str]) -> str:
    """A wrk script sending ``paths`` in turn, again and again."""
    table = ",\n  ".join(lua_string(path) for path in paths)
    return (
        f"""
local paths = {{
  {table}
}}
local counter = 0

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
"""
        + DONE
    )


@dataclass
class Step:
    """What one size measured: bare against the catalogue with and without its cache, and the latencies."""

    size: int
    cached: Result
    uncached: Result
    latency: dict[str, Run]


def start_catalogue(stack: contextlib.ExitStack, database: Path, cache: int) -> Server:
    env = {**hub_env("sqlite://"), DATABASE_ENV: str(database), CACHE_ENV: str(cache), "PYTHONWARNINGS": "ignore"}
    server = Server("bench.catalogue:catalogue_app", env)
    stack.callback(server.stop)
    server.start(SEARCH + "?rows=0")
    return server


def measure_size(size: int, database: Path, paths: list[str], args: argparse.Namespace, loadgen: Loadgen) -> Step:
    with contextlib.ExitStack() as stack:
        cached, uncached = start_catalogue(stack, database, 1024), start_catalogue(stack, database, 0)
        held = httpx.get(cached.base + SEARCH, params={"rows": 0}, timeout=30).json()["result"]["count"]
        for path in paths:  # every query answers, alike with and without the cache
            answers = [httpx.get(server.base + path, timeout=60) for server in (cached, uncached)]
            if any(a.status_code != 200 for a in answers) or answers[0].json() != answers[1].json():
                raise SystemExit(f"{path}: the catalogue answered {answers[0].status_code}/{answers[1].status_code}")
        env = {**hub_env("sqlite://"), ANSWER_ENV: httpx.get(cached.base + paths[0], timeout=30).text}
        bare = start_bare(stack, "bench.catalogue:bare_app", SEARCH, env)
        for server in (cached, uncached, bare):
            loadgen.pin(server)
        print(f"\n== {held:,} datasets: servers bare {bare.pid}, cached {cached.pid}, uncached {uncached.pid}")
        latency = {}
        for name, server in (("uncached", uncached), ("cached", cached)):
            loadgen.run(server, cycling_script(paths), SEARCH, 1, connections=1)  # warm-up
            latency[name] = run = loadgen.run(server, cycling_script(paths), SEARCH, args.seconds, connections=1)
            print(
                f"  latency {name:<8} (wrk -c1) p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                f"{run.cpu_ms:6.3f} CPU ms/req, wrk {run.wrk_share:4.0%} of a core"
            )
        results = []
        for name, server in (("cached", cached), ("uncached", uncached)):
            label = f"package_search, {len(paths)} queries in turn, {args.connections} connections"
            scenario = Scenario(name, label, SEARCH, 200, lambda: cycling_script(paths))
            results.append(measure(loadgen, bare, server, scenario, args.rounds, args.seconds, args.warmup))
    return Step(held, results[0], results[1], latency)


def growth_table(steps: list[Step]) -> bool:
    """The main figures at each size; whether every target was met."""
    print("\nGrowth (medians over interleaved rounds; latency from one connection)")
    print(
        f"  {'datasets':>9}  {'uncached p50/p99 ms':>19}  {'uncached req/s':>14} {'CPU ms/req':>10} "
        f"{'cached req/s':>12} {'bare req/s':>10}  {'req/s cached/bare':>17} {'CPU cost bare/uncached':>22}"
    )
    met = True
    for step in steps:
        run, cached, uncached = step.latency["uncached"], step.cached, step.uncached
        rate_ratio = cached.median(lambda r: r.rate_ratio)
        met = met and run.p50_ms < MEDIAN_TARGET_MS and rate_ratio >= RATE_TARGET
        print(
            f"  {step.size:>9,}  {run.p50_ms:>8.2f} /{run.p99_ms:>8.2f}  "
            f"{uncached.median(lambda r: r.hub.rate):>14.0f} "
            f"{uncached.median(lambda r: r.hub.cpu_ms):>10.3f} {cached.median(lambda r: r.hub.rate):>12.0f} "
            f"{cached.median(lambda r: r.bare.rate):>10.0f}  {rate_ratio:>17.2f} "
            f"{uncached.median(lambda r: r.cost_ratio):>22.3f}"
        )
    print(
        f"targets: uncached p50 < {MEDIAN_TARGET_MS:.0f} ms and cached req/s >= {RATE_TARGET} x bare at every size: "
        + ("PASS" if met else "MISS")
    )
    return met


def run(args: argparse.Namespace, scratch: Path) -> list[Step]:
    loadgen = open_loadgen(args.connections, scratch)
    mix = queries(args.queries)
    paths = [f"{SEARCH}?{urlencode(query)}" for query in mix]
    print(f"{len(paths)} queries in the mix, {len(set(paths))} distinct; {args.seconds} s per wrk run")
    database, built, steps = scratch / "catalogue.db", 0, []
    for size in args.sizes:
        started = time.perf_counter()
        asyncio.run(build(database, built, size))
        print(f"\nbuilt datasets {built:,} .. {size - 1:,} in {time.perf_counter() - started:.1f} s")
        built = size
        steps.append(measure_size(size, database, paths, args, loadgen))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 50 / 500 / 5k, short runs (~1.5 minutes)")
    parser.add_argument("--sizes", default=None, help="generated datasets, comma-separated (default 1k,10k,100k)")
    parser.add_argument("--queries", type=int, default=300, help="queries in the mix wrk cycles through")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per size (default 3)")
    parser.add_argument("--seconds", type=int, default=None, help="whole seconds per wrk run (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections")
    args = parser.parse_args()
    defaults = {"sizes": "50,500,5000", "rounds": 1, "seconds": 2} if args.quick else {}
    fill_defaults(args, {"sizes": "1000,10000,100000", "rounds": 3, "seconds": 4, **defaults})
    args.sizes = sorted(int(size) for size in str(args.sizes).split(","))
    steps = run_bench("catalogue", lambda scratch, _stack: run(args, scratch))
    growth_table(steps)
    exit_if_failed(sum(r.failed for step in steps for r in (step.cached, step.uncached)))


if __name__ == "__main__":
    main()
