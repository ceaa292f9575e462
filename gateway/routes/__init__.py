"""The gateway's routers, one per resource.

``create_app`` mounts every router in :data:`ROUTERS`, in order; a new resource (the exchange API, the schema
registry) adds its router here and nowhere else.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.facades import ngsi_ld, ngsi_ld_subscriptions, open311
from gateway.routes import admin, cities, modules, oauth, schema_files, stream, subscriptions, transparency, whoami

ROUTERS: list[APIRouter] = [
    oauth.router,
    whoami.router,
    admin.router,
    modules.router,
    cities.router,
    transparency.router,
    subscriptions.router,
    stream.router,
    schema_files.router,
    open311.router,
    ngsi_ld.router,
    ngsi_ld_subscriptions.router,
]
