"""Validation throughput: the fast path (jsonschema-rs over the schema rewritten for it), the same over
the schema as written, and the explaining path (python-jsonschema), each against parsing the same JSON with
orjson alone, measured in the same run.

    .venv/bin/python bench/validate.py [--entities 20000] [--repeat 5]

The corpus is every bundled example of every type, copied with fresh ids until it holds --entities entities,
with one in ten replaced by a bundled invalid case. Rates are the best of --rounds passes,
and the passes are interleaved round by round (parse, fast, parse + fast, as written, explaining), so that each ratio is
taken between passes that ran moments apart; the ratio printed is the median over the rounds (the machine is
shared and noisy). Target: fast path >= 0.5 x parse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

# Run as `python bench/<name>.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from schemas import SchemaRegistry  # noqa: E402
from schemas.registry import MODELS_DIR  # noqa: E402
from schemas.validation import FastValidator  # noqa: E402

TARGET = 0.5


def corpus(size: int) -> list[bytes]:
    valid, invalid = [], []
    for folder in sorted(p for p in MODELS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")):
        valid += [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "examples").glob("*.json"))]
        invalid += [
            json.loads(p.read_text(encoding="utf-8"))["entity"] for p in sorted((folder / "invalid").glob("*.json"))
        ]
    out = []
    for index in range(size):
        if index % 10 == 9:
            entity = dict(invalid[index % len(invalid)])
        else:
            entity = dict(valid[index % len(valid)])
            entity["id"] = entity["id"].rsplit(":", 1)[0] + f":bench-{index}"
        out.append(orjson.dumps(entity))
    return out


def timed(work: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    count = work()
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, its figures mean little")
    if "--quick" in sys.argv:
        parser.set_defaults(entities=2_000, rounds=3)
    args = parser.parse_args()

    registry = SchemaRegistry.load()
    texts = corpus(args.entities)
    parsed = [orjson.loads(t) for t in texts]
    as_written = {v.type_name: FastValidator(v.document, as_written=True).is_valid for v in registry.latest()}
    for entity in parsed[:200]:  # compile every validator before timing
        registry.is_valid(entity)
        registry.explain(entity)
    if any(registry.is_valid(e) != as_written[e["type"]](e) for e in parsed):
        raise SystemExit("the rewritten schema changed a verdict")

    def parse() -> int:
        for text in texts:
            orjson.loads(text)
        return len(texts)

    def fast() -> int:
        is_valid = registry.is_valid
        return sum(1 for entity in parsed if is_valid(entity) or True)

    def parse_and_fast() -> int:
        is_valid = registry.is_valid
        return sum(1 for text in texts if is_valid(orjson.loads(text)) or True)

    def written() -> int:
        return sum(1 for entity in parsed if as_written[entity["type"]](entity) or True)

    explain_sample = parsed[: max(1, len(parsed) // 40)]

    def explaining() -> int:
        explain = registry.explain
        return sum(1 for entity in explain_sample if explain(entity) is not None)

    valid_share = sum(registry.is_valid(e) for e in parsed) / len(parsed)
    passes = {
        "parse": parse,
        "fast": fast,
        "parse+fast": parse_and_fast,
        "as-written": written,
        "explaining": explaining,
    }
    rates: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(args.rounds):
        for name, work in passes.items():
            count, seconds = timed(work)
            rates[name].append(count / seconds)

    def ratio(name: str) -> float:
        return statistics.median(r / p for r, p in zip(rates[name], rates["parse"], strict=True))

    avg = sum(len(t) for t in texts) / len(texts)
    print(
        f"corpus: {len(texts)} entities of {len(registry.types())} types, {avg:.0f} bytes on average, "
        f"{valid_share:.0%} valid; {args.rounds} interleaved rounds"
    )
    labels = {
        "parse": "orjson parse (ceiling)",
        "fast": "fast path (jsonschema-rs)",
        "parse+fast": "parse + fast path",
        "as-written": "jsonschema-rs, schema as written",
        "explaining": "explaining path (jsonschema)",
    }
    for name, label in labels.items():
        line = f"{label:32} {max(rates[name]):>12,.0f} entities/s"
        if name != "parse":
            line += f"   median ratio to parse {ratio(name):.3f}"
        print(line)
    verdict = "meets" if ratio("fast") >= TARGET else "MISSES"
    print(f"fast path {verdict} the target of {TARGET} x the parse rate")


if __name__ == "__main__":
    main()
