"""One home: every sub-command finds the hub's state the same way, and reading commands never create it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import Settings
from qala.home import Home, resolve_home

QALA = [sys.executable, "-c", "from qala.cli import main; main()"]


def qala(*args: str, home: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALA_")}
    if home is not None:
        env["QALA_HOME"] = str(home)
    return subprocess.run([*QALA, *args], capture_output=True, text=True, env=env, cwd=cwd, check=False)


def test_the_home_is_the_option_else_the_variable_else_the_xdg_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QALA_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_home() == tmp_path / "xdg" / "qala"
    monkeypatch.setenv("QALA_HOME", str(tmp_path / "env"))
    assert resolve_home() == tmp_path / "env"
    assert resolve_home(tmp_path / "option") == tmp_path / "option"


def test_settings_come_from_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QALA_DATABASE_URL", raising=False)
    monkeypatch.delenv("QALA_ISSUER", raising=False)
    monkeypatch.setenv("QALA_HOME", str(tmp_path))
    Home(tmp_path).write_env({"QALA_ISSUER": "http://127.0.0.1:8123"})
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'qala.db'}"
    assert settings.issuer == "http://127.0.0.1:8123"
    monkeypatch.setenv("QALA_ISSUER", "http://127.0.0.1:9999")  # the environment overrides the home's file
    assert Settings().issuer == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    "command",
    [("audit", "verify"), ("members", "list"), ("status",)],
)
def test_reading_commands_refuse_a_home_without_a_hub(tmp_path: Path, command: tuple[str, ...]) -> None:
    home = tmp_path / "nothing-here"
    result = qala("--home", str(home), *command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len([line for line in lines if line.startswith("qala: error:")]) == 1, result.stderr
    assert f"no hub in {home}" in result.stderr
    assert not (home / "qala.db").exists(), "no empty database was created"


def test_the_suite_issuer_key_lives_in_the_home_whatever_the_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = qala("conformance", "issuer", home=home, cwd=tmp_path / "a")
    second = qala("conformance", "issuer", home=home, cwd=tmp_path / "b")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # the same kid and JWKS from two directories
    assert (home / "conformance" / "issuer-key.json").is_file()
    assert not list(tmp_path.glob("*/var"))
