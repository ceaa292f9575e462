"""The hub passes its own conformance suite for every collection profile, on SQLite and PostgreSQL.

The hub runs as a real uvicorn server trusting the suite's issuer (``QALA_TRUSTED_ISSUERS``), exactly as a city
would configure it to federate with another identity provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.runner import RunOptions, run
from conformance.serving import serve_app
from gateway.app import create_app
from gateway.settings import Settings, TrustedIssuer
from schemas import SchemaRegistry
from tests.conformance.conftest import free_port

PROFILES = [schema.collection for schema in SchemaRegistry.load().latest()]


@pytest.fixture
def hub(database_url: str, issuer_url: str) -> Iterator[tuple[str, Settings]]:
    port = free_port()
    settings = Settings(
        env="demo",
        database_url=database_url,
        issuer=f"http://127.0.0.1:{port}",
        trusted_issuers=[TrustedIssuer(issuer=issuer_url, jwks_uri=f"{issuer_url}/oauth/jwks")],
        rate_limit_enabled=False,
    )
    with serve_app(create_app(settings), "127.0.0.1", port) as base:
        yield base, settings


def test_hub_is_certified_for_every_collection(
    hub: tuple[str, Settings], issuer_url: str, tmp_path: Path, database_url: str
) -> None:
    base, settings = hub
    verdicts = {}
    failures = {}
    for profile in PROFILES:
        report = run(
            RunOptions(
                profile=profile,
                base_url=f"{base}/api/v1",
                audience=settings.audience,
                issuer_url=issuer_url,
                state_dir=tmp_path / "state",
                module_name="Qala hub",
                vendor="Qala",
                module_version="0.1.0",
            )
        )
        verdicts[profile] = report.verdict
        failures[profile] = [(r.test_id, r.message) for r in report.results if r.blocking]
    failing = {profile: found for profile, found in failures.items() if found}
    assert not failing, failing
