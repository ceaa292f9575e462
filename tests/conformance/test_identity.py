"""What a certificate names: the module (never the mandate), its API without the test server's address, and an
issuer whose identity does not depend on where the suite was started or was reachable from the module."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conformance.errors import ConfigurationError
from conformance.issuer import default_state_dir
from conformance.runner import RunOptions, check_reachability, openapi_digest, run
from conformance.serving import serve_app
from examples.vendor_module import create_app
from openapi.mandate import mandate_document
from qala.cli import build_app
from schemas import SchemaRegistry
from tests.conformance.conftest import AUDIENCE

Module = Callable[..., AbstractContextManager[str]]


def test_the_same_module_at_two_addresses_has_one_digest(module: Module) -> None:
    with module() as first, module() as second:
        documents = [httpx.get(f"{base}/openapi.json").json() for base in (first, second)]
    assert documents[0]["servers"] != documents[1]["servers"]
    assert openapi_digest(documents[0]) == openapi_digest(documents[1])
    documents[1]["paths"].pop("/openapi.json")
    assert openapi_digest(documents[0]) != openapi_digest(documents[1])  # any change of the API still counts


def test_name_and_version_come_from_the_modules_own_document(
    reference: str, options: Callable[[str], RunOptions]
) -> None:
    report = run(replace(options(reference), module_name=None, module_version=None, fail_fast=True))
    assert report.module.name == "Reference vendor module: service-requests"
    assert report.module.version == "1.0.0"


def test_a_module_that_serves_the_mandates_info_gets_no_certificate(
    issuer_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALA_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("QALA_ENV", "demo")
    app = create_app(issuer_url, f"{issuer_url}/oauth/jwks", AUDIENCE)
    mandate_info = mandate_document(SchemaRegistry.load().get("service-requests"))["info"]
    app.title, app.version = mandate_info["title"], mandate_info["version"]
    args = ["conformance", "run", "--profile", "service-requests", "--audience", AUDIENCE, "--issuer-url", issuer_url,
            "--state-dir", str(tmp_path / "state"), "--report-dir", str(tmp_path / "report")]  # fmt: skip
    with serve_app(app, "127.0.0.1", 0) as base_url:
        result = CliRunner().invoke(build_app(), [*args, "--base-url", base_url])
    assert result.exit_code == 2, result.output
    assert "names no module of its own" in result.output
    assert not (tmp_path / "report" / "certificate.jws").exists()
    assert (tmp_path / "report" / "report.json").exists()


def test_the_issuer_key_does_not_follow_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QALA_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    first = default_state_dir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert default_state_dir() == first == tmp_path / "state" / "qala" / "conformance"
    monkeypatch.setenv("QALA_HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / "conformance"


def test_a_remote_module_cannot_be_pointed_at_a_loopback_issuer() -> None:
    remote = RunOptions(profile="service-requests", base_url="https://module.example.kz/api/v1")
    with pytest.raises(ConfigurationError, match="cannot reach the suite's issuer"):
        check_reachability(remote)
    check_reachability(replace(remote, issuer_url="http://203.0.113.7:8765"))
    check_reachability(RunOptions(profile="service-requests", base_url="http://127.0.0.1:9000"))
