"""Mounting the catalogue: :func:`routers` for the hub's app, :func:`create_app` for a catalogue alone.

The routers find the :class:`~catalogue.service.Catalogue` on ``request.app.state.catalogue``; the hub builds
it in its lifespan:

    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> for r in routers():
    ...     app.include_router(r)
    >>> app.url_path_for("catalogue_action", name="package_show")
    '/api/3/action/package_show'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue import ckan_api, dcat_routes, downloads, web
from catalogue.headers import SecurityHeadersMiddleware
from catalogue.service import Catalogue, CatalogueSettings, ModuleProvider, _no_modules
from catalogue.source import EntitySource
from gateway.inputs import InputGuardMiddleware
from schemas.registry import SchemaRegistry


def routers() -> list[APIRouter]:
    """Every catalogue router: CKAN Action API, DCAT, downloads, then the web pages (which own ``/``)."""
    return [ckan_api.router(), dcat_routes.router(), downloads.router(), web.router()]


def create_app(
    engine: AsyncEngine,
    source: EntitySource,
    registry: SchemaRegistry | None = None,
    settings: CatalogueSettings | None = None,
    *,
    modules: ModuleProvider = _no_modules,
    create_tables: bool = True,
) -> FastAPI:
    """A standalone catalogue app; the catalogue is opened in the lifespan and reachable as ``app.state``."""
    catalogue = Catalogue(
        engine, source, registry or SchemaRegistry.load(), settings, modules=modules, create_tables=create_tables
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with catalogue:
            yield
        await engine.dispose()

    app = FastAPI(title=catalogue.settings.title, lifespan=lifespan, docs_url="/api/docs", redoc_url=None)
    app.state.catalogue = catalogue
    for router in routers():
        app.include_router(router)
    app.add_middleware(InputGuardMiddleware)  # U+0000 and over-deep JSON are 400s here too
    app.add_middleware(SecurityHeadersMiddleware)
    return app
