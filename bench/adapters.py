"""Benchmark: a generated cp1251 ';' CSV of iKOMEK-109 cases through the mapping to validated NDJSON.

Prints rows/s and peak memory of the adapter pipeline against a plain ``csv.reader`` pass over the same file in
the same run (the ceiling), and their ratio (target >= 0.25 with two workers), at three sizes a factor of 10
apart (``--rows`` is the largest: 10,000,000 by default, so 100,000 / 1,000,000 / 10,000,000), and then the
three side by side, so that how the cost grows is visible (rows/s and ratio should hold, peak memory stay flat:
the pipeline streams). The pipeline runs in one process, and with ``--workers`` processes reading, mapping and
validating (0 skips that).

Each measurement runs in a child process so that its peak RSS is its own (with workers: the parent's and the
largest worker's), and reports the CPU seconds it took (the parent's and its workers'): on a machine shared with
other work, two workers may not get two CPUs, and the CPU per row and the CPUs used (CPU seconds over wall
seconds) show whether they did. The speed of the machines this runs on drifts by half within a minute, so each
pipeline runs ``--rounds`` times, each run is set against the mean of the ceilings measured just before and just
after it, and the median of those ratios is the figure. Before the rounds, each pipeline runs once uncounted: on a
fresh virtual machine, the first writing of 848 MB of NDJSON lands on memory the guest has never touched (writing
848 MB from Python took 2.3 s into such memory and 0.2 s into memory used before, measured once on the
development VM), a kernel cost that a long-running host does not pay and that the ceiling, which writes nothing,
never pays. The NDJSON of each run is compared (by SHA-256) across runs and worker counts, then deleted.

The full run is long: at 10,000,000 rows the CSV is 2.2 GB and each run writes 8.5 GB of NDJSON (some 11 GB of
disk at a time), and the rounds there take 15 to 20 minutes on two CPUs; ``--rows 1000000`` stops at 1,000,000
(a few minutes), ``--quick`` at 100,000 rows with one round (under a minute).

The same figure is printed for the spreadsheet adapters: the Almaty-109 register (make_samples.py's rows,
repeated with fresh ids) as ``.xlsx``, ``.xls`` and ``.ods``, each through its adapter against a ceiling of
python-calamine reading every row of the same file, measured in the same run (``--sheet-rows``; 0 skips them;
``.xls`` holds at most 65,535 rows).

    python bench/adapters.py                                # 100k, 1M and 10M rows, 3 rounds each
    python bench/adapters.py --rows 1000000 --rounds 2      # 10k, 100k and 1M rows
    python bench/adapters.py --quick                        # 1k, 10k and 100k rows, 1 round
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    with open(path, encoding="cp1251", newline="") as stream:
        for _ in csv.reader(stream, delimiter=";"):
            count += 1
    return {"rows": count - 1, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def child_pipeline(path: str, out: str, workers: str = "1") -> dict[str, float]:
    # Imported in the child only: this script's own name would shadow the package when run from bench/.
    from adapters.mapping import Mapping  # noqa: PLC0415
    from adapters.pipeline import run  # noqa: PLC0415
    from adapters.quarantine import Quarantine  # noqa: PLC0415
    from adapters.registry import AdapterRegistry  # noqa: PLC0415
    from schemas import SchemaRegistry  # noqa: PLC0415

    registry = SchemaRegistry.load()
    adapter = AdapterRegistry.load().create("csv", path, Mapping.load(MAPPING))
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(out, "wb") as stream, open(out + ".quarantine", "wb") as q:
        summary = run(adapter, registry, out=stream, quarantine=Quarantine(q, "csv"), workers=int(workers))
    seconds = time.perf_counter() - started
    # the workers have been waited for: their times are the children's
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = [a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True)]
    return {
        "rows": summary.read,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "seconds": seconds,
        "cpu": cpu[0],
        "worker_cpu": cpu[1],
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
        "r['peak_mib'] = m.peak_mib(); "
        "r['worker_peak_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; print(json.dumps(r))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), __file__, kind, str(path), str(out), str(workers), adapter],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def peak_mib() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec, where ``ru_maxrss`` keeps the
    peak of the process that forked it (here the bench, which may have held a spreadsheet register)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def digest(path: Path) -> str:
    """SHA-256 of a run's NDJSON and quarantine; deletes both (at 10,000,000 rows, 8.5 GB each run)."""
    sha = hashlib.sha256()
    for part in (path, Path(f"{path}.quarantine")):
        with part.open("rb") as stream:
            while chunk := stream.read(1 << 22):
                sha.update(chunk)
        sha.update(b"\0")
        part.unlink()
    return sha.hexdigest()


def bench_size(folder: Path, rows: int, configs: list[int], rounds: int) -> dict[str, Any]:
    """Every pipeline over a generated file of ``rows`` rows, each run between two ceilings; the figures."""
    path, out = folder / f"{rows}.csv", folder / "out.ndjson"
    started = time.perf_counter()
    generate(path, rows)
    size = path.stat().st_size / 2**20
    print(f"\n{rows:,} rows ({size:,.0f} MiB, cp1251, ';') generated in {time.perf_counter() - started:.1f} s")
    ceilings = [measure("ceiling", path, out)]
    digests: dict[str, int] = {}
    for w in configs:  # uncounted: see the module's docstring
        warm = measure("pipeline", path, out, w)
        out_mib = out.stat().st_size / 2**20
        digests.setdefault(digest(out), w)
        label = "1 process" if w == 1 else f"{w} workers"
        pace = warm["rows"] / warm["seconds"] / (ceilings[0]["rows"] / ceilings[0]["seconds"])
        print(f"  warm-up, {label}, not counted: {pace:.3f} of the ceiling")
    runs: dict[int, list[dict[str, float]]] = {w: [] for w in configs}
    for _ in range(rounds):
        for w in configs:  # the machine's speed drifts: each run is set against the ceilings either side
            run = measure("pipeline", path, out, w)
            digests.setdefault(digest(out), w)
            ceilings.append(measure("ceiling", path, out))
            pace = statistics.mean(c["rows"] / c["seconds"] for c in ceilings[-2:])
            run["ratio"] = run["rows"] / run["seconds"] / pace
            runs[w].append(run)
    path.unlink()
    if len(digests) != 1:
        raise SystemExit(f"{rows:,} rows: the runs wrote different NDJSON or quarantine ({sorted(digests.values())})")
    rates = [c["rows"] / c["seconds"] for c in ceilings]
    ceiling_cpu = statistics.median(c["cpu"] / c["rows"] for c in ceilings)
    print(
        f"  csv.reader (ceiling):   {statistics.median(rates):>10,.0f} rows/s  "
        f"peak {ceilings[-1]['peak_mib']:.0f} MiB  "
        f"CPU {ceiling_cpu * 1e6:.2f} us/row  (median of {len(rates)}: {min(rates):,.0f} to {max(rates):,.0f})"
    )
    figures: dict[str, Any] = {"rows": rows, "ceiling": statistics.median(rates)}
    for w in configs:
        figures[w] = report(w, runs[w], out_mib, ceiling_cpu)
    return figures


def report(workers: int, runs: list[dict[str, float]], out_mib: float, ceiling_cpu: float) -> dict[str, float]:
    """One pipeline's figures at one size: median rate and ratio over the rounds (each run's ratio is to the
    ceiling measured just before and just after it), peak memory, and CPU per row against the ceiling's, which
    other work on the machine changes much less than rows/s; returns them."""
    rates = sorted(run["rows"] / run["seconds"] for run in runs)
    ratios = sorted(run["ratio"] for run in runs)
    ratio = statistics.median(ratios)
    big = max(runs, key=lambda run: run["peak_mib"])
    worker_peak = f" + worker {big['worker_peak_mib']:.0f} MiB" if big["worker_peak_mib"] else ""
    label = "pipeline, 1 process:" if workers == 1 else f"pipeline, {workers} workers:"
    print(
        f"  {label:<22} {statistics.median(rates):>10,.0f} rows/s  peak {big['peak_mib']:.0f} MiB{worker_peak}  "
        f"(read {big['rows']:,.0f} = accepted {big['accepted']:,.0f} + rejected {big['rejected']:,.0f}; "
        f"{out_mib:,.0f} MiB NDJSON)"
    )
    spread = f"  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})" if len(ratios) > 1 else ""
    target = "the target, >= 0.25, is for 2 workers" if workers == 1 else "target >= 0.25: "
    target += "" if workers == 1 else ("met" if ratio >= 0.25 else "NOT met")
    print(f"    ratio to ceiling:     {ratio:.3f}  ({target}){spread}")
    cpu = statistics.median((run["cpu"] + run["worker_cpu"]) / run["rows"] for run in runs)
    parent = statistics.median(run["cpu"] / run["rows"] for run in runs)
    used = statistics.median((run["cpu"] + run["worker_cpu"]) / run["seconds"] for run in runs)
    split = f" (parent {parent * 1e6:.2f}, workers {cpu * 1e6 - parent * 1e6:.2f})" if workers > 1 else ""
    print(f"    CPU:                  {cpu * 1e6:.2f} us/row{split}, {used:.2f} CPUs used")
    bound = f"; on {workers} CPUs of its own at most {workers * ceiling_cpu / cpu:.3f}" if workers > 1 else ""
    print(f"    in CPU time:          {ceiling_cpu / cpu:.3f} of csv.reader's CPU per row{bound}")
    return {
        "rate": statistics.median(rates),
        "ratio": ratio,
        "peak": big["peak_mib"],
        "worker_peak": big["worker_peak_mib"],
        "cpu": cpu,
        "used": used,
    }


def growth(sizes: list[dict[str, Any]], configs: list[int]) -> None:
    """The main figures of every size side by side, and how they change from the smallest size to the largest."""
    print("\ngrowth: rows/s, ratio to csv.reader, peak memory, CPU per row")
    for w in configs:
        label = "1 process" if w == 1 else f"{w} workers"
        for figures in sizes:
            f = figures[w]
            worker_peak = f" + worker {f['worker_peak']:.0f}" if f["worker_peak"] else ""
            print(
                f"  {label:<10} {figures['rows']:>12,} rows  {f['rate']:>10,.0f} rows/s  ratio {f['ratio']:.3f}  "
                f"peak {f['peak']:>4.0f}{worker_peak} MiB  CPU {f['cpu'] * 1e6:5.2f} us/row ({f['used']:.2f} CPUs)"
            )
        first, last = sizes[0][w], sizes[-1][w]
        scale = sizes[-1]["rows"] / sizes[0]["rows"]
        print(
            f"  {label:<10} x{scale:,.0f} rows: rows/s x{last['rate'] / first['rate']:.2f}, "
            f"CPU per row x{last['cpu'] / max(first['cpu'], 1e-12):.2f}, "
            f"peak memory x{last['peak'] / first['peak']:.2f}"
            + (f", worker x{last['worker_peak'] / first['worker_peak']:.2f}" if first["worker_peak"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="the largest size; also a tenth and a hundredth")
    parser.add_argument("--workers", type=int, default=2, help="processes for the second pipeline; 0 skips it")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each pipeline, each between two ceilings")
    parser.add_argument("--sheet-rows", type=int, default=20000, help="rows of the spreadsheet register; 0 skips")
    parser.add_argument("--only-sheets", action="store_true", help="skip the CSV figures")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, its figures mean little")
    if "--quick" in sys.argv:
        parser.set_defaults(rows=100_000, rounds=1, sheet_rows=5000)
    args = parser.parse_args()
    if args.sheet_rows:
        with tempfile.TemporaryDirectory(prefix="qala-bench-sheets-") as tmp:
            bench_sheets(Path(tmp), min(args.sheet_rows, 65000))
    if args.only_sheets:
        return
    configs = [1] + ([args.workers] if args.workers > 1 else [])
    sizes = sorted({max(args.rows // 100, 1), max(args.rows // 10, 1), args.rows})
    with tempfile.TemporaryDirectory(prefix="qala-bench-") as tmp:
        figures = [bench_size(Path(tmp), rows, configs, args.rounds) for rows in sizes]
    growth(figures, configs)


if __name__ == "__main__":
    main()
