"""Fixtures shared by the whole suite.

``database_url`` runs a test once on SQLite (a fresh file) and once on the real PostgreSQL server on
127.0.0.1:5432 (a fresh database, dropped afterwards). Set QALA_TEST_POSTGRES_URL to use another server;
set QALA_TEST_SKIP_POSTGRES=1 to run on SQLite only (CI never does).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

# Every test runs against a home of its own making: never the developer's ~/.local/share/qala or QALA_HOME.
os.environ["QALA_HOME"] = tempfile.mkdtemp(prefix="qala-test-home-")

POSTGRES_ADMIN_URL = os.environ.get("QALA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_database() -> Iterator[str]:
    name = f"qala_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _engines() -> list[object]:
    engines: list[object] = ["sqlite"]
    if not os.environ.get("QALA_TEST_SKIP_POSTGRES"):
        engines.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return engines


@pytest.fixture(params=_engines())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qala.db'}"
    else:
        yield from _postgres_database()
