from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

import typer
from typer.testing import CliRunner

from qala.cli import ENTRY_POINT_GROUP, SUMMARIES, build_app


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


def test_root_help_imports_no_command_stack() -> None:
    code = (
        "import sys; from qala.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "stacks = ('gateway.app', 'catalogue.app', 'conformance.runner', 'fastapi')\n"
        "heavy = sorted(m for m in stacks if m in sys.modules)\n"
        "print('loaded:', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "loaded: []" in proc.stdout, proc.stdout + proc.stderr
    for name in ("audit", "conformance", "demo", "status"):
        assert f" {name} " in proc.stdout


def test_the_listed_summaries_are_the_commands_own() -> None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in SUMMARIES:
            continue
        target = entry.load()
        text = target.info.help if isinstance(target, typer.Typer) else (target.__doc__ or "")
        own = " ".join(str(text).split())
        assert own.startswith(SUMMARIES[entry.name]), (entry.name, own)


def test_help_shows_what_to_type_not_python_types() -> None:
    result = CliRunner().invoke(build_app(), ["audit", "tail", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "INTEGER" in result.output
    for label in ("<bool>", "<str>", "<int", "<list["):
        assert label not in result.output


def test_tables_are_not_cut_when_piped() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from qala.cli import main; main(['schemas', 'list'])"],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "personal fields" in proc.stdout
    assert "…" not in proc.stdout
