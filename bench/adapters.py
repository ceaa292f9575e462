"""Benchmark: a generated cp1251 ';' CSV of iKOMEK-109 cases through the mapping to validated NDJSON.

Prints rows/s and peak memory of the adapter pipeline against a plain ``csv.reader`` pass over the same file in
the same run (the ceiling), their ratio (target >= 0.25), and peak memory at a tenth of the rows and at all of
them (it should be flat: the pipeline streams). Each measurement runs in a child process so that its peak RSS
is its own.

    python bench/adapters.py               # 1,000,000 rows
    python bench/adapters.py --rows 200000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "legacy" / "ikomek-109-astana.csv"
MAPPING = ROOT / "examples" / "legacy" / "ikomek-109-astana.yaml"


def generate(path: Path, rows: int) -> None:
    """Repeat the sample's good rows with fresh ids and shifted dates; one bad row in a thousand."""
    text = SAMPLE.read_bytes().decode("cp1251")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    header = next(reader)
    good = [r for r in reader if len(r) == len(header) and not r[1].startswith("31.02")][:40]
    with path.open("w", encoding="cp1251", newline="") as stream:
        writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        for n in range(rows):
            row = list(good[n % len(good)])
            row[0] = f"IK-B-{n:08d}"
            day = 1 + (n // 1000) % 28
            row[1] = f"{day:02d}.{1 + (n // 28000) % 12:02d}.2024 {n % 24:02d}:{n % 60:02d}"
            if row[10]:
                row[10] = f"{day:02d}.{1 + (n // 28000) % 12:02d}.2024 23:{n % 60:02d}"
            if n % 1000 == 999:
                row[1] = "31.02.2024 10:00"
            writer.writerow(row)


def child_ceiling(path: str) -> dict[str, float]:
    started = time.perf_counter()
    count = 0
    with open(path, encoding="cp1251", newline="") as stream:
        for _ in csv.reader(stream, delimiter=";"):
            count += 1
    return {"rows": count - 1, "seconds": time.perf_counter() - started}


def child_pipeline(path: str, out: str) -> dict[str, float]:
    # Imported in the child only: this script's own name would shadow the package when run from bench/.
    from adapters.mapping import Mapping  # noqa: PLC0415
    from adapters.pipeline import run  # noqa: PLC0415
    from adapters.quarantine import Quarantine  # noqa: PLC0415
    from adapters.registry import AdapterRegistry  # noqa: PLC0415
    from schemas import SchemaRegistry  # noqa: PLC0415

    registry = SchemaRegistry.load()
    adapter = AdapterRegistry.load().create("csv", path, Mapping.load(MAPPING))
    started = time.perf_counter()
    with open(out, "wb") as stream, open(out + ".quarantine", "wb") as q:
        summary = run(adapter, registry, out=stream, quarantine=Quarantine(q, "csv"))
    return {
        "rows": summary.read,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "seconds": time.perf_counter() - started,
    }


def measure(kind: str, path: Path, out: Path) -> dict[str, float]:
    """Run one measurement in a child; add its peak RSS in MiB."""
    code = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1]); import importlib.util as u; "
        "spec = u.spec_from_file_location('bench_adapters', sys.argv[2]); m = u.module_from_spec(spec); "
        "spec.loader.exec_module(m); "
        "r = m.child_ceiling(sys.argv[4]) if sys.argv[3] == 'ceiling' else m.child_pipeline(sys.argv[4], sys.argv[5]); "
        "r['peak_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), __file__, kind, str(path), str(out)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qala-bench-") as tmp:
        small, big = Path(tmp) / "small.csv", Path(tmp) / "big.csv"
        started = time.perf_counter()
        generate(small, max(args.rows // 10, 1))
        generate(big, args.rows)
        size = big.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows ({size:.0f} MiB, cp1251, ';') in {time.perf_counter() - started:.1f} s")
        ceiling = measure("ceiling", big, Path(tmp) / "unused")
        small_run = measure("pipeline", small, Path(tmp) / "small.ndjson")
        big_run = measure("pipeline", big, Path(tmp) / "big.ndjson")
        out_mib = (Path(tmp) / "big.ndjson").stat().st_size / 2**20
    ceiling_rate = ceiling["rows"] / ceiling["seconds"]
    rate = big_run["rows"] / big_run["seconds"]
    print(f"csv.reader (ceiling):    {ceiling_rate:>10,.0f} rows/s  peak {ceiling['peak_mib']:.0f} MiB")
    print(
        f"adapter pipeline:        {rate:>10,.0f} rows/s  peak {big_run['peak_mib']:.0f} MiB  "
        f"(read {big_run['rows']:,.0f} = accepted {big_run['accepted']:,.0f} + rejected {big_run['rejected']:,.0f}; "
        f"{out_mib:.0f} MiB NDJSON)"
    )
    ratio = rate / ceiling_rate
    print(f"ratio pipeline/ceiling:  {ratio:.3f}  (target >= 0.25: {'met' if ratio >= 0.25 else 'NOT met'})")
    print(
        f"peak memory: {small_run['rows']:,.0f} rows {small_run['peak_mib']:.0f} MiB, "
        f"{big_run['rows']:,.0f} rows {big_run['peak_mib']:.0f} MiB "
        f"(growth x{big_run['peak_mib'] / small_run['peak_mib']:.2f} "
        f"for x{big_run['rows'] / small_run['rows']:.0f} rows)"
    )


if __name__ == "__main__":
    main()
