"""Settings: environment variables, derived URLs, and refusing unsafe secrets outside the demo."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.app import SERVER_GC_THRESHOLDS, create_app
from gateway.db import make_engine
from gateway.services import open_services
from gateway.settings import DEMO_SECRET, Settings

STRONG = "x" * 40


def test_reads_qala_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALA_ISSUER", "https://hub.qala.kz/")
    monkeypatch.setenv("QALA_ACCESS_TOKEN_TTL", "600")
    monkeypatch.setenv(
        "QALA_TRUSTED_ISSUERS",
        json.dumps([{"issuer": "https://conformance.qala.kz", "jwks_uri": "https://conformance.qala.kz/jwks"}]),
    )
    settings = Settings()
    assert settings.issuer == "https://hub.qala.kz"
    assert settings.audience == "https://hub.qala.kz/api/v1"
    assert settings.token_endpoint == "https://hub.qala.kz/oauth/token"
    assert settings.access_token_ttl == 600
    assert settings.trusted_issuers[0].jwks_uri == "https://conformance.qala.kz/jwks"


def test_demo_falls_back_to_the_public_demo_secret() -> None:
    assert Settings(env="demo").secret_key.get_secret_value() == DEMO_SECRET


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"env": "development"}, "QALA_SECRET_KEY must be set"),
        ({"env": "production", "secret_key": DEMO_SECRET}, "QALA_SECRET_KEY must be set"),
        ({"env": "development", "secret_key": "short"}, "at least 32 characters"),
        ({"env": "production", "secret_key": STRONG, "issuer": "http://hub.kz"}, "https://"),
        ({"trusted_issuers": [{"issuer": "https://x.kz"}]}, "exactly one of jwks_uri or jwks"),
        ({"rate_limit_failure_mode": "sometimes"}, "rate_limit_failure_mode"),
    ],
)
def test_refuses_unsafe_configuration(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)  # type: ignore[arg-type]


def test_production_with_a_real_secret_is_accepted() -> None:
    settings = Settings(env="production", secret_key=STRONG, issuer="https://hub.qala.kz")  # type: ignore[arg-type]
    assert settings.secret == STRONG.encode()


async def test_a_server_process_gets_the_server_gc_thresholds(settings: Settings) -> None:
    """Only an app made for a server process changes the collector; one app among many in tests does not."""
    before = gc.get_threshold()
    try:
        plain = create_app(settings)
        async with plain.router.lifespan_context(plain):
            assert gc.get_threshold() == before
        server = create_app(settings, server_gc=True)
        async with server.router.lifespan_context(server):
            assert gc.get_threshold() == SERVER_GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


async def test_each_worker_keeps_the_postgresql_connections_its_settings_give(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment sizes PostgreSQL's max_connections from QALA_DATABASE_POOL_SIZE and _MAX_OVERFLOW per worker."""
    monkeypatch.setenv("QALA_DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("QALA_DATABASE_MAX_OVERFLOW", "1")
    settings = Settings(env="demo", database_url=database_url)
    async with open_services(settings) as services:
        pool: Any = services.engine.sync_engine.pool
        if database_url.startswith("sqlite"):
            assert pool.size() == make_engine(database_url).sync_engine.pool.size(), "SQLite keeps its own pool"
            return
        held = [await services.engine.connect() for _ in range(4)]
        try:
            assert (pool.size(), pool.checkedout(), pool.overflow()) == (3, 4, 1)
        finally:
            for connection in held:
                await connection.close()
