from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from typer.testing import CliRunner

from qala.cli import ENTRY_POINT_GROUP, build_app


def test_every_registered_command_loads() -> None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        assert entry.load() is not None, entry.name


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(build_app(), ["--help"])
    assert result.exit_code == 0
    for name in ("schemas", "openapi", "demo"):
        assert name in result.output


def test_unexpected_failure_is_one_line_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from qala.cli import main; main(['schemas', 'show', 'Nope'])"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "qala: error: unknown type or collection: 'Nope'"
    assert "Traceback" not in proc.stderr
