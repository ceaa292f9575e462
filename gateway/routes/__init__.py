"""The gateway's routers, one per resource.

``create_app`` mounts every router in :data:`ROUTERS`, in order; a new resource (the exchange API, the schema
registry) adds its router here and nowhere else.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.routes import admin, modules, oauth, stream, subscriptions, whoami

ROUTERS: list[APIRouter] = [oauth.router, whoami.router, admin.router, modules.router]
ROUTERS += [subscriptions.router, stream.router]
