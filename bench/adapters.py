"""Benchmark: a generated cp1251 ';' CSV of iKOMEK-109 cases through the mapping to validated NDJSON.

Prints rows/s and peak memory of the adapter pipeline against a plain ``csv.reader`` pass over the same file in
the same run (the ceiling), their ratio (target >= 0.25), and peak memory at a tenth of the rows and at all of
them (it should be flat: the pipeline streams). The pipeline runs in one process, and with ``--workers``
processes reading, mapping and validating (0 skips that). Each measurement runs in a child process so that its
peak RSS is its own (with workers: the parent's and the largest worker's). The speed of the machines this runs
on drifts by half within a minute, so each pipeline runs ``--rounds`` times, each run is set against the mean of
the ceilings measured just before and just after it, and the median of those ratios is the figure. Before the
rounds, each pipeline runs once uncounted: on a fresh virtual machine, the first writing of its 848 MB of NDJSON
lands on memory the guest has never touched (writing 848 MB from Python took 2.3 s into such memory and 0.2 s
into memory used before, measured once on the development VM), a kernel cost that a long-running host does not
pay and that the ceiling, which writes nothing, never pays.

The same figure is printed for the spreadsheet adapters: the Almaty-109 register (make_samples.py's rows,
repeated with fresh ids) as ``.xlsx``, ``.xls`` and ``.ods``, each through its adapter against a ceiling of
python-calamine reading every row of the same file, measured in the same run (``--sheet-rows``; 0 skips them;
``.xls`` holds at most 65,535 rows).

    python bench/adapters.py               # 1,000,000 rows, 3 rounds
    python bench/adapters.py --rows 200000 --workers 2 --rounds 1
    python bench/adapters.py --rows 100000 --workers 0 --rounds 1 --sheet-rows 5000   # quick
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as `python bench/<name>.py`, this folder comes first on the import path, where bench/catalogue.py and
# bench/adapters.py would stand in for the packages of those names: keep it off the path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "legacy" / "ikomek-109-astana.csv"
MAPPING = ROOT / "examples" / "legacy" / "ikomek-109-astana.yaml"
SHEET_MAPPING = ROOT / "examples" / "legacy" / "almaty-109.yaml"
SHEET_KINDS = ("xlsx", "xls", "ods")


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


def generate_sheets(folder: Path, rows: int) -> dict[str, Path]:
    """The Almaty-109 register with ``rows`` rows, as make_samples.py writes it, in each spreadsheet kind."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "examples" / "legacy" / "make_samples.py")
    if spec is None or spec.loader is None:
        raise SystemExit("examples/legacy/make_samples.py is missing")
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    good = samples.almaty_rows()[:-1]  # less the bad date
    register = []
    for n in range(rows):
        row = list(good[n % len(good)])
        row[0] = f"ALM-B-{n:07d}"
        register.append(row)
    paths = {}
    for kind in SHEET_KINDS:
        paths[kind] = folder / f"register.{kind}"
        getattr(samples, f"write_almaty_{kind}")(paths[kind], register)
    return paths


def child_sheet_ceiling(path: str) -> dict[str, float]:
    """python-calamine reading every row of the first sheet: what any calamine-based adapter cannot beat."""
    import python_calamine  # noqa: PLC0415

    started = time.perf_counter()
    book = python_calamine.CalamineWorkbook.from_path(path)
    count = sum(1 for _ in book.get_sheet_by_index(0).iter_rows())
    book.close()
    return {"rows": count - 3, "seconds": time.perf_counter() - started}


def child_sheet_pipeline(path: str, out: str, kind: str) -> dict[str, float]:
    from adapters.mapping import Mapping  # noqa: PLC0415
    from adapters.pipeline import run  # noqa: PLC0415
    from adapters.quarantine import Quarantine  # noqa: PLC0415
    from adapters.registry import AdapterRegistry  # noqa: PLC0415
    from schemas import SchemaRegistry  # noqa: PLC0415

    registry = SchemaRegistry.load()
    adapter = AdapterRegistry.load().create(kind, path, Mapping.load(SHEET_MAPPING))
    started = time.perf_counter()
    with open(out, "wb") as stream, open(out + ".quarantine", "wb") as q:
        summary = run(adapter, registry, out=stream, quarantine=Quarantine(q, kind))
    return {
        "rows": summary.read,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "seconds": time.perf_counter() - started,
    }


def bench_sheets(folder: Path, rows: int) -> None:
    """Each spreadsheet kind through its adapter, against calamine alone reading the same file just before and
    just after it; NDJSON identical across the kinds."""
    started = time.perf_counter()
    paths = generate_sheets(folder, rows)
    took = time.perf_counter() - started
    print(f"generated the register with {rows:,} rows as {', '.join(SHEET_KINDS)} in {took:.1f} s")
    outputs = {}
    for kind, path in paths.items():
        before = measure("sheet-ceiling", path, folder / "unused")
        run = measure("sheet-pipeline", path, folder / f"{kind}.ndjson", adapter=kind)
        after = measure("sheet-ceiling", path, folder / "unused")
        ceiling = (before["rows"] / before["seconds"] + after["rows"] / after["seconds"]) / 2
        rate = run["rows"] / run["seconds"]
        print(
            f"{kind:<5} pipeline {rate:>9,.0f} rows/s, calamine alone {ceiling:>9,.0f} rows/s: "
            f"ratio {rate / ceiling:.3f}  (read {run['rows']:,.0f} = accepted {run['accepted']:,.0f} + "
            f"rejected {run['rejected']:,.0f}; peak {run['peak_mib']:.0f} MiB)"
        )
        outputs[kind] = (folder / f"{kind}.ndjson").read_bytes()
    if len(set(outputs.values())) != 1:
        raise SystemExit("the spreadsheet kinds gave different NDJSON")


def child_ceiling(path: str) -> dict[str, float]:
    started = time.perf_counter()
    count = 0
    with open(path, encoding="cp1251", newline="") as stream:
        for _ in csv.reader(stream, delimiter=";"):
            count += 1
    return {"rows": count - 1, "seconds": time.perf_counter() - started}


def child_pipeline(path: str, out: str, workers: str = "1") -> dict[str, float]:
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
        summary = run(adapter, registry, out=stream, quarantine=Quarantine(q, "csv"), workers=int(workers))
    return {
        "rows": summary.read,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "seconds": time.perf_counter() - started,
    }


def measure(kind: str, path: Path, out: Path, workers: int = 1, adapter: str = "") -> dict[str, float]:
    """Run one measurement in a child; add its peak RSS in MiB (and its largest worker's, if any)."""
    code = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1]); import importlib.util as u; "
        "spec = u.spec_from_file_location('bench_adapters', sys.argv[2]); m = u.module_from_spec(spec); "
        "spec.loader.exec_module(m); k = sys.argv[3]; "
        "r = m.child_ceiling(sys.argv[4]) if k == 'ceiling' else m.child_sheet_ceiling(sys.argv[4]) "
        "if k == 'sheet-ceiling' else m.child_sheet_pipeline(sys.argv[4], sys.argv[5], sys.argv[7]) "
        "if k == 'sheet-pipeline' else m.child_pipeline(*sys.argv[4:7]); "
        "r['peak_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "r['worker_peak_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; print(json.dumps(r))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), __file__, kind, str(path), str(out), str(workers), adapter],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(label: str, small: dict[str, float], runs: list[dict[str, float]], out_mib: float) -> None:
    """One pipeline's figures: median rate and ratio over the rounds (each run's ratio is to the ceiling measured
    just before and just after it), and the peak memory of a tenth of the rows against all of them."""
    rates = sorted(run["rows"] / run["seconds"] for run in runs)
    ratios = sorted(run["ratio"] for run in runs)
    ratio = statistics.median(ratios)
    big = max(runs, key=lambda run: run["peak_mib"])
    workers = f" + worker {big['worker_peak_mib']:.0f} MiB" if big["worker_peak_mib"] else ""
    print(
        f"{label:<24} {statistics.median(rates):>10,.0f} rows/s  peak {big['peak_mib']:.0f} MiB{workers}  "
        f"(read {big['rows']:,.0f} = accepted {big['accepted']:,.0f} + rejected {big['rejected']:,.0f}; "
        f"{out_mib:.0f} MiB NDJSON)"
    )
    spread = f"  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})" if len(ratios) > 1 else ""
    verdict = "met" if ratio >= 0.25 else "NOT met"
    print(f"  ratio to ceiling:      {ratio:.3f}  (target >= 0.25: {verdict}){spread}")
    flat = f"x{big['peak_mib'] / small['peak_mib']:.2f}"
    if big["worker_peak_mib"]:
        flat += f", worker x{big['worker_peak_mib'] / small['worker_peak_mib']:.2f}"
    print(
        f"  peak memory:           {small['rows']:,.0f} rows {small['peak_mib']:.0f} MiB, "
        f"{big['rows']:,.0f} rows {big['peak_mib']:.0f} MiB (growth {flat} for x{big['rows'] / small['rows']:.0f} rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="processes for the second run; 0 skips it")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each pipeline, each between two ceilings")
    parser.add_argument("--sheet-rows", type=int, default=20000, help="rows of the spreadsheet register; 0 skips")
    parser.add_argument("--only-sheets", action="store_true", help="skip the CSV figures")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, its figures mean little")
    if "--quick" in sys.argv:
        parser.set_defaults(rows=20_000, rounds=1)
    args = parser.parse_args()
    if args.sheet_rows:
        with tempfile.TemporaryDirectory(prefix="qala-bench-sheets-") as tmp:
            bench_sheets(Path(tmp), min(args.sheet_rows, 65000))
    if args.only_sheets:
        return
    configs = [1] + ([args.workers] if args.workers > 1 else [])
    with tempfile.TemporaryDirectory(prefix="qala-bench-") as tmp:
        small, big = Path(tmp) / "small.csv", Path(tmp) / "big.csv"
        started = time.perf_counter()
        generate(small, max(args.rows // 10, 1))
        generate(big, args.rows)
        size = big.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows ({size:.0f} MiB, cp1251, ';') in {time.perf_counter() - started:.1f} s")
        smalls = {w: measure("pipeline", small, Path(tmp) / "s.ndjson", w) for w in configs}
        runs: dict[int, list[dict[str, float]]] = {w: [] for w in configs}
        ceilings: list[float] = []
        ceiling = measure("ceiling", big, Path(tmp) / "unused")
        ceilings.append(ceiling["rows"] / ceiling["seconds"])
        for w in configs:  # uncounted: see the module's docstring
            warm = measure("pipeline", big, Path(tmp) / f"{w}.ndjson", w)
            label = "1 process" if w == 1 else f"{w} workers"
            print(f"warm-up, {label}, not counted: {warm['rows'] / warm['seconds'] / ceilings[0]:.3f} of the ceiling")
        for _ in range(args.rounds):
            for w in configs:  # the machine's speed drifts: each run is set against the ceilings either side
                run = measure("pipeline", big, Path(tmp) / f"{w}.ndjson", w)
                ceiling = measure("ceiling", big, Path(tmp) / "unused")
                ceilings.append(ceiling["rows"] / ceiling["seconds"])
                run["ratio"] = run["rows"] / run["seconds"] / ((ceilings[-2] + ceilings[-1]) / 2)
                runs[w].append(run)
        out_mib = (Path(tmp) / "1.ndjson").stat().st_size / 2**20
        for w in configs[1:]:
            if (Path(tmp) / f"{w}.ndjson").read_bytes() != (Path(tmp) / "1.ndjson").read_bytes():
                raise SystemExit(f"--workers {w} wrote different NDJSON from one process")
    print(
        f"csv.reader (ceiling):    {statistics.median(ceilings):>10,.0f} rows/s  peak {ceiling['peak_mib']:.0f} MiB  "
        f"(median of {len(ceilings)}: {min(ceilings):,.0f} to {max(ceilings):,.0f})"
    )
    for w in configs:
        label = "pipeline, 1 process:" if w == 1 else f"pipeline, {w} workers:"
        report(label, smalls[w], runs[w], out_mib)


if __name__ == "__main__":
    main()
