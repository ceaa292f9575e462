"""Every router of the exchange API, for ``create_app`` to mount.

app = create_app(settings, routers=exchange_routers(SchemaRegistry.load()))
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.routes import batch, changes, collections, documents, quarantine, registry
from schemas import SchemaRegistry


def exchange_routers(schemas: SchemaRegistry) -> list[APIRouter]:
    # The fixed paths (batch, changes, schemas, openapi.json) come before the generated collection paths.
    return [
        batch.router,
        changes.router,
        quarantine.router,
        registry.router,
        documents.router,
        *collections.build_routers(schemas),
    ]
