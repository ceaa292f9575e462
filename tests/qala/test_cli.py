from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import typer
from typer.testing import CliRunner

from qala.cli import CLOSED_PIPE_STATUS, ENTRY_POINT_GROUP, SUMMARIES, build_app


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


def _qala(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    code = "from qala.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_usage_errors_are_one_line() -> None:
    for args, message in [
        (("conformance", "run", "--profile", "x"), "Missing option '--base-url'."),
        (("audit", "tail", "--bogus"), "No such option: --bogus"),
        (("nonsense",), "No such command 'nonsense'."),
    ]:
        proc = _qala(*args)
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"qala: error: {message} (see: qala"), proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _qala("--home", str(tmp_path), "serve", "--port", str(port))
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"qala: error: cannot listen on 127.0.0.1:{port}: Address already in use (is a hub running? try --port)\n"
    )


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    legacy = Path(__file__).resolve().parents[2] / "examples" / "legacy"
    source = (legacy / "ikomek-109-astana.csv").read_bytes().split(b"\n")
    rows = [row for row in source[1:] if row.strip()]
    big = tmp_path / "big.csv"
    big.write_bytes(b"\n".join([source[0], *rows * 300]) + b"\n")
    code = "from qala.cli import main; main()"
    args = ["adapt", "run", "csv", str(big), "--mapping", str(legacy / "ikomek-109-astana.yaml"), "--out", "-"]
    writer = subprocess.Popen(  # in tmp_path: the quarantine goes to the working directory with --out -
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    assert writer.stdout is not None
    assert writer.stdout.read(100)
    writer.stdout.close()  # as `| head -c 100` does
    _, errors = writer.communicate(timeout=120)
    assert writer.returncode == CLOSED_PIPE_STATUS
    assert errors.strip() == b""
