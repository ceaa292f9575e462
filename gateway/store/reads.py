"""The exchange store's hot reads (one entity, a list page), sent straight to the database driver.

A read is one statement outside any transaction, and SQLAlchemy's async layer cost it about ten times what the
driver's own call does (a ``SELECT`` took ~140 us of CPU through ``AsyncConnection.execute``, ~13 us through
``aiosqlite``'s ``execute_fetchall``, besides ~70 us to take a connection from the pool and give it back). So these
reads still take a pooled connection from the engine, but send their SQL through the driver: ``aiosqlite``
``execute_fetchall`` or ``asyncpg`` ``fetch``. The SQL is written here in each dialect's parameter style, clause for
clause what SQLAlchemy renders for the same filters, so the planner picks the same indexes. Writes stay with
SQLAlchemy.

    select = Select("sqlite", "service-requests")
    select.where_equal("city", "astana")
    sql, params = select.page(limit=101)
    rows = await fetch(engine, sql, params)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

COLUMNS = (
    "id, type, collection, city, CAST(payload AS TEXT) AS payload, version, seq, received_at, client_id, member, "
    "schema_version"
)
"""The columns of :class:`gateway.store.records.StoredEntity`, in its order; the payload as JSON text."""

GET_SQL = {
    "sqlite": f"SELECT {COLUMNS} FROM entities WHERE id = ?",  # noqa: S608 -- no value is ever spliced in
    "postgresql": f"SELECT {COLUMNS} FROM entities WHERE id = $1",  # noqa: S608
}


async def fetch(engine: AsyncEngine, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """The rows of one read-only statement, run by the driver on a connection from ``engine``'s pool."""
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            return list(await driver.fetch(sql, *params))
        return list(await driver.execute_fetchall(sql, params))


class Select:
    """A list page's ``SELECT`` over one collection, its filters added a clause at a time.

    >>> select = Select("postgresql", "devices")
    >>> select.where_equal("city", "astana")
    >>> select.page(limit=11)[0].split(" WHERE ")[1]
    'collection = $1 AND deleted IS false AND city = $2 ORDER BY id LIMIT $3'
    """

    def __init__(self, dialect: str, collection: str) -> None:
        self.postgres = dialect == "postgresql"
        self.params: list[Any] = []
        self.clauses: list[str] = []
        self.where_equal("collection", collection)
        self.clauses.append("deleted IS false" if self.postgres else "deleted IS 0")

    def _mark(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def where(self, column: str, operator: str, value: Any) -> None:
        """``column operator value``: the column is a name of this module's, never a client's text."""
        self.clauses.append(f"{column} {operator} {self._mark(value)}")

    def where_equal(self, column: str, value: Any) -> None:
        self.where(column, "=", value)

    def where_in(self, column: str, values: Sequence[Any]) -> None:
        marks = ", ".join(self._mark(value) for value in values)
        self.clauses.append(f"{column} IN ({marks})" if values else "1 != 1")  # as SQLAlchemy's empty IN

    def where_payload_equal(self, name: str, value: str | int | float | bool) -> None:
        """The payload's top-level member ``name`` equals ``value`` as JSON would compare them."""
        if self.postgres:  # containment uses the GIN index on the JSONB payload
            self.clauses.append(f"payload @> {self._mark(orjson.dumps({name: value}).decode())}::JSONB")
        else:  # json_extract yields SQL integers, reals and text, so typed values compare as JSON would
            self.clauses.append(f"json_extract(payload, {self._mark(f'$.{name}')}) = {self._mark(value)}")

    def page(self, limit: int) -> tuple[str, list[Any]]:
        """The statement for ``limit`` rows in id order, and its parameters."""
        order = f"ORDER BY id LIMIT {self._mark(limit)}"
        return f"SELECT {COLUMNS} FROM entities WHERE {' AND '.join(self.clauses)} {order}", self.params  # noqa: S608
