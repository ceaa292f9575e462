"""Bring a database to the newest schema with Alembic, safely when several workers start at once.

    await upgrade(engine)       # what the hub does at start-up; a no-op when already current

Processes race to migrate on start-up (workers, a hub and ``qala deliver``); each takes a lock before it reads
the schema's version, so they take turns and the later ones find nothing to do: on PostgreSQL an advisory lock, on
SQLite the database's write lock (``BEGIN IMMEDIATE``). SQLite's DDL would otherwise run outside any transaction,
and two processes that both read "no version" both created the first table.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_KEY = 0x5141_4C41  # "QALA"


FULL_TEXT = ("catalogue_fts", "ix_catalogue_documents_fts")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave out the catalogue's full-text structures (FTS5 and its shadow tables, the tsvector index), which the
    migrations create with raw DDL because no table declaration can describe them."""
    return not (name is not None and type_ in ("table", "index") and name.startswith(FULL_TEXT))


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    elif connection.dialect.name == "sqlite":
        # Python 3.11's sqlite3 begins a transaction only before data changes, so nothing is begun yet: this
        # waits on the busy timeout for another process's migration to commit, and holds the lock through ours.
        # It comes first: a version read before it would hold a snapshot, and taking the write lock after another
        # process has committed fails at once ('database is locked') instead of waiting (a suite run hit it).
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
