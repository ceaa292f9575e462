"""The hub passes its own conformance suite for every collection profile, on SQLite and PostgreSQL.

The hub runs as a real uvicorn process trusting the suite's issuer (``QALA_TRUSTED_ISSUERS``), exactly as a city
would configure it to federate with another identity provider. In a process of its own it also runs beside the
suite, on another core, instead of sharing the test process's interpreter lock with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.runner import RunOptions, run
from gateway.settings import Settings
from schemas import SchemaRegistry
from tests.gateway.serving import HubProcess

PROFILES = [schema.collection for schema in SchemaRegistry.load().latest()]


@pytest.fixture
def hub(database_url: str, issuer_url: str) -> Iterator[tuple[str, Settings]]:
    trusted = [{"issuer": issuer_url, "jwks_uri": f"{issuer_url}/oauth/jwks"}]
    process = HubProcess(database_url, env={"QALA_TRUSTED_ISSUERS": json.dumps(trusted)})
    process.start()
    try:
        # the settings the hub process read, for the audience it expects
        yield process.base, Settings(env="demo", database_url=database_url, issuer=process.base)
    finally:
        process.stop()


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
