"""Fixtures: the reference vendor module served by a real uvicorn server, and the suite's options to test it.

Each test gets its own issuer port and state directory, so runs never share keys or ports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from conformance.runner import RunOptions
from conformance.serving import serve_app
from examples.vendor_module import Fault, create_app
from tests.gateway.serving import free_port

AUDIENCE = "https://module.example.kz/api/v1"


@pytest.fixture
def issuer_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def module(issuer_url: str) -> Callable[..., AbstractContextManager[str]]:
    """``with module(Fault.X) as base_url``: the reference module, with the given defects switched on."""

    def serve(*faults: Fault, stamp_modified: bool = False) -> AbstractContextManager[str]:
        app = create_app(issuer_url, f"{issuer_url}/oauth/jwks", AUDIENCE, faults=faults, stamp_modified=stamp_modified)
        return serve_app(app, "127.0.0.1", 0)

    return serve


@pytest.fixture
def reference(module: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    with module() as base_url:
        yield base_url


@pytest.fixture
def options(issuer_url: str, tmp_path: Path) -> Callable[[str], RunOptions]:
    def make(base_url: str) -> RunOptions:
        return RunOptions(
            profile="service-requests",
            base_url=base_url,
            audience=AUDIENCE,
            issuer_url=issuer_url,
            state_dir=tmp_path / "state",
            module_name="Reference 311 module",
            vendor="Qala examples",
            module_version="1.0.0",
            timeout=5.0,
        )

    return make
