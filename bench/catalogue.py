"""``package_search`` at 10,000 datasets against a real uvicorn server, beside a bare FastAPI endpoint.

    .venv/bin/python bench/catalogue.py [--datasets 10000] [--requests 1500] [--concurrency 8]

Builds a SQLite catalogue with --datasets generated static datasets (titles in kk/ru/en, tags, organisations,
themes, resources) plus the live datasets of the bundled examples, then starts two uvicorn servers on loopback
ports, each in its own process: the catalogue, and a bare FastAPI app whose endpoint returns a constant JSON.
Against each it measures latency one request at a time (median, p99) and throughput with --concurrency
clients, interleaving the two servers round by round so the ratio compares moments that ran close together.
The queries mix free text, filters, facets and paging as a portal and ckanapi would send them.
Targets: catalogue median < 20 ms, catalogue rate >= 0.3 x bare rate. The catalogue caches search results until
the next write (``CatalogueSettings.search_cache_size``); ``--no-cache`` measures every query against SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from catalogue.app import create_app  # noqa: E402
from catalogue.cli import example_source  # noqa: E402
from catalogue.packages import finish, group_dict, normalise, now  # noqa: E402
from catalogue.service import Catalogue, CatalogueSettings  # noqa: E402
from gateway.db import make_engine  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

MEDIAN_TARGET_MS = 20.0
RATE_TARGET = 0.3
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def build(database: Path, count: int) -> None:

    registry = SchemaRegistry.load()
    engine = make_engine(f"sqlite:///{database}")
    catalogue = Catalogue(
        engine, example_source(registry), registry, CatalogueSettings(refresh_seconds=0), create_tables=True
    )
    await catalogue.open()
    rng = random.Random(1)
    async with engine.begin() as connection:
        for org in ORGS:
            await catalogue.store.save_group(
                connection, group_dict({"name": org, "title": org.upper()}, is_organization=True)
            )
        orgs = await catalogue.store.groups(connection, "organization")
        groups = await catalogue.store.groups(connection, "group")
        for n in range(count):
            titles = {loc: " ".join(rng.choices(words, WEIGHTS[loc], k=4)) for loc, words in WORDS.items()}
            doc = normalise(
                {
                    "name": f"dataset-{n:05d}",
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


def serve_catalogue(database: str, port: int, cache_size: int) -> None:

    registry = SchemaRegistry.load()
    app = create_app(
        make_engine(f"sqlite:///{database}"),
        example_source(registry),
        registry,
        CatalogueSettings(site_url=f"http://127.0.0.1:{port}", refresh_seconds=0),
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_bare(port: int) -> None:

    app = FastAPI()

    @app.get("/api/3/action/package_search")
    async def bare() -> dict[str, object]:
        return {"help": "bare", "success": True, "result": {"count": 0, "results": []}}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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


async def latency(url: str, batch: list[dict[str, str]]) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        out = []
        for params in batch:
            start = time.perf_counter()
            response = await client.get("/api/3/action/package_search", params=params)
            out.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
        return out


async def rate(url: str, batch: list[dict[str, str]], concurrency: int) -> float:
    pending = list(batch)

    async def worker(client: httpx.AsyncClient) -> None:
        while pending:
            (await client.get("/api/3/action/package_search", params=pending.pop())).raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return len(batch) / (time.perf_counter() - start)


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        try:
            httpx.get(url + "/api/3/action/package_search", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server for {url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1500, help="per measurement and server, per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, its figures mean little")
    if "--quick" in sys.argv:
        parser.set_defaults(datasets=300, requests=100, rounds=1)
    parser.add_argument("--no-cache", action="store_true", help="disable the package_search result cache")
    parser.add_argument("--serve-catalogue", nargs=3, metavar=("DATABASE", "PORT", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_catalogue:
        serve_catalogue(args.serve_catalogue[0], int(args.serve_catalogue[1]), int(args.serve_catalogue[2]))
        return
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "catalogue.db"
        started = time.perf_counter()
        asyncio.run(build(database, args.datasets))
        print(f"built {args.datasets} datasets (+ live ones) in {time.perf_counter() - started:.1f} s")
        ports = free_port(), free_port()
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve-catalogue",
                    str(database),
                    str(ports[0]),
                    "0" if args.no_cache else "1024",
                ],
                env=env,
            ),
            subprocess.Popen([sys.executable, __file__, "--serve-bare", str(ports[1])], env=env),
        ]
        try:
            urls = {"catalogue": f"http://127.0.0.1:{ports[0]}", "bare": f"http://127.0.0.1:{ports[1]}"}
            for url, process in zip(urls.values(), processes, strict=True):
                wait_until_up(url, process)
            held = httpx.get(urls["catalogue"] + "/api/3/action/package_search", params={"rows": 0}).json()
            print(f"the catalogue server holds {held['result']['count']} datasets")
            measure(urls, args)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)


def measure(urls: dict[str, str], args: argparse.Namespace) -> None:
    batch = queries(args.requests)
    distinct = len({tuple(sorted(q.items())) for q in batch})
    print(f"{len(batch)} queries, {distinct} distinct; result cache {'off' if args.no_cache else 'on'}")
    asyncio.run(latency(urls["catalogue"], batch[:100]))  # warm caches and connections
    times: dict[str, list[float]] = {name: [] for name in urls}
    rates: dict[str, list[float]] = {name: [] for name in urls}
    ratios = []
    for _ in range(args.rounds):
        for name, url in urls.items():
            times[name] += asyncio.run(latency(url, batch[: args.requests // 3]))
            rates[name].append(asyncio.run(rate(url, batch, args.concurrency)))
        ratios.append(rates["catalogue"][-1] / rates["bare"][-1])
    for name in urls:
        ordered = sorted(times[name])
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"{name:9s}  median {statistics.median(ordered):6.2f} ms  p99 {p99:6.2f} ms  "
            f"{max(rates[name]):8.0f} requests/s (best of {args.rounds}, {args.concurrency} clients)"
        )
    median_ms = statistics.median(times["catalogue"])
    ratio = statistics.median(ratios)
    print(
        f"catalogue/bare rate: {ratio:.2f} (target >= {RATE_TARGET}); "
        f"catalogue median {median_ms:.2f} ms (target < {MEDIAN_TARGET_MS} ms)"
    )
    print("PASS" if median_ms < MEDIAN_TARGET_MS and ratio >= RATE_TARGET else "MISS")


if __name__ == "__main__":
    main()
