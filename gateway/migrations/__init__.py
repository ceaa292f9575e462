"""Alembic migrations of the hub's database (every table on :data:`gateway.db.metadata`)."""
