"""Time-zone rules: the adapters work without a system database, and refuse one that predates UTC+5 in 2024."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path


def _qala(tmp_path: Path, tzpath: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qala.cli import main; main()", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
        env={**os.environ, "PYTHONTZPATH": str(tzpath)},
    )  # fmt: skip


def test_adapt_works_without_a_system_time_zone_database(tmp_path: Path) -> None:
    empty = tmp_path / "no-zoneinfo"
    empty.mkdir()
    process = _qala(tmp_path, empty, "adapt", "list")
    assert process.returncode == 0, process.stderr
    assert "csv" in process.stdout


def test_a_database_older_than_2024a_is_refused_at_start_up(tmp_path: Path) -> None:
    """A system database from before 2024a: Asia/Almaty still on +06:00 all year (Asia/Dhaka's rules are that)."""
    old = tmp_path / "zoneinfo"
    (old / "Asia").mkdir(parents=True)
    dhaka = files("tzdata").joinpath("zoneinfo", "Asia", "Dhaka")
    shutil.copyfile(str(dhaka), old / "Asia" / "Almaty")
    process = _qala(tmp_path, old, "adapt", "list")
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    assert "predates tzdata 2024a" in process.stderr
    assert "UTC+06:00 on 2024-03-02" in process.stderr
