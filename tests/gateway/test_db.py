from __future__ import annotations

import sqlalchemy as sa

from gateway.db import make_engine, metadata


async def test_engine_round_trips_json_on_both_backends(database_url: str) -> None:
    table = sa.Table("t_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("doc", sa.JSON))
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), [{"id": 1, "doc": {"name": {"kk": "Қазақстан"}}}])
            row = (await conn.execute(sa.select(table.c.doc))).scalar_one()
        assert row == {"name": {"kk": "Қазақстан"}}
        assert metadata.naming_convention["pk"] == "pk_%(table_name)s"
    finally:
        await engine.dispose()
