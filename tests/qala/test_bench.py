"""Every benchmark runs as the README says (``python bench/<name>.py``, from the clone), here at smoke-test size.

The figures of such tiny runs mean nothing; what is tested is that each script starts (its folder does not shadow
the ``catalogue`` and ``adapters`` packages, in it or in the servers it starts), runs every phase, and prints a
ratio against the ceiling it measured.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "validate": ["--entities", "200", "--rounds", "1"],
    "auth": ["--rounds", "1", "--seconds", "1", "--warmup", "0", "--scenarios", "token,protected"],
    "adapters": ["--rows", "500", "--rounds", "1", "--workers", "2"],
    "catalogue": ["--sizes", "20", "--queries", "20", "--rounds", "1", "--seconds", "1", "--warmup", "0"],
    "kpi": [],  # --quick is 20,000 entities, a few seconds
    "audit_tree": [],
    "delivery": ["--subscriptions", "1"],
    "mutation": ["--every", "60"],
    "http_load": ["--rounds", "1", "--seconds", "1", "--warmup", "0", "--entities", "300"],
    "compare": ["--rounds", "1", "--seconds", "1", "--warmup", "1", "--entities", "200", "--scenarios", "get"],
    "scaleout": ["--rounds", "1", "--seconds", "1", "--warmup", "1", "--entities", "200", "--scenarios", "get"],
    "exchange": [
        *("--rounds", "1", "--seconds", "1", "--warmup", "0", "--sizes", "1000,3000", "--batch", "200"),
        *("--batch-rounds", "1", "--list-seconds", "1", "--no-postgres"),
    ],
}


def test_every_bench_script_is_covered() -> None:
    assert {path.stem for path in (ROOT / "bench").glob("*.py")} == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_bench_runs_quick(name: str, tmp_path: Path) -> None:
    # run from another folder too: python puts the script's folder, not the cwd, first on the path
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", *TINY[name]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # a figure against its ceiling (the mutation bench's is its kill rate against the target)
    assert re.search(r"ratio|/bare|/parse|kill rate", proc.stdout, re.IGNORECASE), proc.stdout
    assert "Traceback" not in proc.stderr
