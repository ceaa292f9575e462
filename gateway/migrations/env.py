"""Alembic environment: runs on the connection :func:`gateway.migrate.upgrade` hands it (async engines)."""

from __future__ import annotations

from alembic import context

import catalogue.tables
import gateway.audit
import gateway.checkpoints
import gateway.client_auth
import gateway.clients
import gateway.keys
import gateway.locking
import gateway.revocation
import gateway.routes.modules
import gateway.store.tables
import gateway.subscriptions.tables
from gateway.db import metadata
from gateway.migrate import include_name

# Every module that declares tables is imported above so that autogenerate sees the whole schema.
TABLE_MODULES = (
    catalogue.tables,
    gateway.audit,
    gateway.checkpoints,
    gateway.client_auth,
    gateway.clients,
    gateway.keys,
    gateway.locking,
    gateway.revocation,
    gateway.routes.modules,
    gateway.store.tables,
    gateway.subscriptions.tables,
)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `gateway.migrate.upgrade(engine)` (or `qala serve`), not bare alembic")
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True, include_name=include_name
)
with context.begin_transaction():
    context.run_migrations()
