"""Alembic builds exactly the schema the code declares, and takes it down again, on both engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conformance.hubkeys import hub_signer
from gateway.db import make_engine, metadata
from gateway.migrate import downgrade, include_name, upgrade
from gateway.services import open_services
from gateway.settings import Settings

COMPARE = {"compare_type": True, "include_name": include_name}
ROOT = Path(__file__).resolve().parents[2]


async def test_upgrade_matches_the_declared_tables_and_downgrade_removes_them(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second start-up is a no-op
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts=COMPARE), metadata)
            )
            tables = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
        if engine.dialect.name == "sqlite":  # the GIN index on payloads exists on PostgreSQL only (ddl_if)
            diffs = [d for d in diffs if not (d[0] == "add_index" and d[1].name == "ix_entities_payload")]
        assert diffs == [], diffs
        assert {"entities", "audit_log", "clients", "catalogue_datasets"} <= tables
        await downgrade(engine)
        async with engine.connect() as conn:
            left = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
        assert left <= {"alembic_version"}, left
    finally:
        await engine.dispose()


async def test_a_database_first_opened_by_the_suite_s_signer_still_starts_the_hub(tmp_path: Path) -> None:
    """`qala conformance run` may open the hub's database before the hub ever ran: it must migrate, not
    create_all, or the hub's own start-up would find tables Alembic does not know and fail."""
    settings = Settings(env="demo", database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    async with hub_signer(settings) as signer:
        assert signer.kid
    async with open_services(settings) as services:
        assert await services.directory.list_members() == []


MIGRATE = "import asyncio, sys; from gateway.db import make_engine; from gateway.migrate import upgrade; " + (
    "asyncio.run(upgrade(make_engine(sys.argv[1])))"
)


def test_processes_that_start_together_on_a_fresh_sqlite_file_all_migrate_it(tmp_path: Path) -> None:
    """A hub and `qala deliver` (or two workers) started at once on a new home each migrate at start-up. SQLite runs
    DDL outside a transaction, so both read 'no version' and both created the first table: one failed with 'table
    ... already exists' about once in ten starts. Each now takes the database's write lock before it reads."""
    for attempt in range(4):
        url = f"sqlite:///{tmp_path / f'hub-{attempt}.db'}"
        starts = [
            subprocess.Popen([sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE, cwd=ROOT) for _ in range(3)
        ]
        failures = [process.communicate(timeout=120)[1].decode()[-600:] for process in starts]
        assert [process.returncode for process in starts] == [0, 0, 0], failures
