"""Named locks that serialise short critical sections across workers, on SQLite and PostgreSQL alike.

The lock is a row: updating it takes PostgreSQL's row lock and SQLite's database write lock, both released when
the surrounding transaction ends. Taking the write lock *first* matters on SQLite: a transaction that read before
writing cannot be upgraded once another writer committed, and fails instead of waiting.

    async with engine.begin() as conn:
        await acquire(conn, "signing-keys")
        ...  # read, decide, write: no other worker is inside this section
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db import metadata

locks = sa.Table(
    "gateway_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False, default=0),
)


async def ensure_lock(engine: AsyncEngine, name: str) -> None:
    """Create the lock row once; racing creators are harmless."""
    try:
        async with engine.begin() as conn:
            await conn.execute(locks.insert().values(name=name, generation=0))
    except IntegrityError:
        pass


async def acquire(conn: AsyncConnection, name: str) -> None:
    """Block until this transaction holds the lock ``name`` (created with :func:`ensure_lock`)."""
    result = await conn.execute(locks.update().where(locks.c.name == name).values(generation=locks.c.generation + 1))
    if result.rowcount != 1:
        raise LookupError(f"lock {name!r} does not exist; call ensure_lock first")
