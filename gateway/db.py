"""Database engines and the hub's shared table metadata.

SQLite (a file, zero set-up) is the default; PostgreSQL is the scale path. Every table of the hub is declared
on :data:`metadata`, whichever module owns it, so that one Alembic history (:mod:`gateway.migrate`) covers
them all.

    >>> normalise_url("sqlite:///var/qala.db")
    'sqlite+aiosqlite:///var/qala.db'
    >>> normalise_url("postgresql://localhost/qala")
    'postgresql+asyncpg://localhost/qala'
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonColumn = JSON().with_variant(JSONB(), "postgresql")
"""A JSON document column: JSONB on PostgreSQL, JSON text on SQLite."""

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def normalise_url(url: str) -> str:
    """Pick the async driver for a plain ``sqlite://`` or ``postgresql://`` URL; leave explicit drivers alone."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_CACHE_PRAGMA = "PRAGMA cache_size=-32768"
"""32 MiB of page cache instead of 2, on every SQLite connection: a batch insert touches four b-trees (the rows and
the list, modified and sequence indexes); a one-off timing of raw inserts into the hub's table ran a third slower
with the default cache."""


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``. SQLite files get WAL, a busy timeout and foreign keys; their folder is made."""
    url = normalise_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, json_serializer=_json_text, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(SQLITE_CACHE_PRAGMA)
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, json_serializer=_json_text, **kwargs)


def _json_text(value: Any) -> str:
    """JSON columns are written with orjson: several times faster than the standard library on entity payloads."""
    return orjson.dumps(value).decode()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def writer(engine: AsyncEngine) -> AsyncIterator[None]:
    """Serialise this process's write transactions on SQLite before they reach the database.

    SQLite admits one writer at a time; concurrent ones otherwise wait in its busy handler, which sleeps in
    steps of up to 100 ms. Queueing on an asyncio lock instead wakes the next writer the moment the previous one
    commits. PostgreSQL's row locks queue well by themselves, so there this does nothing.

        async with writer(engine), engine.begin() as conn:
            ...
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITE_LOCKS.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock:
        yield
