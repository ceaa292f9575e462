"""``qala conformance`` end to end: run, certify, verify, tamper, and the one-line failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from examples.vendor_module import Fault
from qala.cli import build_app
from tests.conformance.conftest import AUDIENCE

runner = CliRunner()


@pytest.fixture
def hub_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALA_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("QALA_ENV", "demo")


def run_args(base_url: str, issuer_url: str, tmp_path: Path) -> list[str]:
    return [
        "conformance", "run", "--profile", "service-requests", "--base-url", base_url, "--audience", AUDIENCE,
        "--issuer-url", issuer_url, "--state-dir", str(tmp_path / "state"), "--report-dir", str(tmp_path / "report"),
        "--vendor", "Qala examples",
    ]  # fmt: skip


@pytest.mark.usefixtures("hub_database")
def test_run_certifies_and_verify_accepts_only_the_issued_certificate(
    reference: str, issuer_url: str, tmp_path: Path
) -> None:
    app = build_app()
    result = runner.invoke(app, run_args(reference, issuer_url, tmp_path))
    assert result.exit_code == 0, result.output
    assert re.search(r"\d{3} passed, 0 failed", result.output)
    assert " s\n" in result.output  # the run time is printed
    certificate, jwks = tmp_path / "report" / "certificate.jws", tmp_path / "report" / "hub-jwks.json"
    verified = runner.invoke(app, ["conformance", "verify", str(certificate), "--jwks", str(jwks)])
    assert verified.exit_code == 0, verified.output
    assert "valid:" in verified.output

    token = certificate.read_text().strip()
    middle = len(token) // 2
    tampered = tmp_path / "tampered.jws"
    tampered.write_text(token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :])
    rejected = runner.invoke(app, ["conformance", "verify", str(tampered), "--jwks", str(jwks)])
    assert rejected.exit_code == 1
    assert "certificate rejected" in rejected.output
    assert "Traceback" not in rejected.output


@pytest.mark.usefixtures("hub_database")
def test_a_defective_module_is_not_certified_and_named(
    module: Callable[..., AbstractContextManager[str]], issuer_url: str, tmp_path: Path
) -> None:
    with module(Fault.ACCEPT_ALG_NONE) as base_url:
        result = runner.invoke(build_app(), run_args(base_url, issuer_url, tmp_path))
    assert result.exit_code == 1
    assert "QM-AUTH-007" in result.output
    assert not (tmp_path / "report" / "certificate.jws").exists()
    assert (tmp_path / "report" / "report.html").exists()


def test_requirements_lists_the_profile() -> None:
    result = runner.invoke(build_app(), ["conformance", "requirements", "--profile", "kpi-values", "--json"])
    assert result.exit_code == 0, result.output
    assert "QM-AUTH-007" in result.output
    assert "QM-AUTH-011" not in result.output  # kpi-values has no personal fields


def test_unknown_profile_is_one_line() -> None:
    result = runner.invoke(build_app(), ["conformance", "requirements", "--profile", "roads"])
    assert result.exit_code == 2
    assert "unknown profile 'roads'" in result.output
