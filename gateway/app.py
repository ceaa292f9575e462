"""Build the gateway's ASGI application.

    from gateway.app import create_app
    from gateway.settings import Settings
from gateway.store.source import StoreSource
    app = create_app(Settings())          # uvicorn --factory calls this once per worker

Nothing is opened at import time: the lifespan opens the database, keys, Redis and the checkpoint task, and puts
them on ``app.state.services``. Middleware, outermost first: telemetry (span + duration), body-size limit,
audit of authorised calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from catalogue.app import routers as catalogue_routers
from catalogue.headers import SecurityHeadersMiddleware
from catalogue.service import Catalogue, CatalogueSettings
from cityscore.web import router as cityscore_pages
from gateway.auditing import AuditMiddleware
from gateway.bodylimit import BodyLimitMiddleware
from gateway.draining import DRAINING
from gateway.errors import install_error_handlers
from gateway.inputs import InputGuardMiddleware
from gateway.kpi_feed import running_engine
from gateway.routes import ROUTERS, apidocs, documents
from gateway.routes.collections import CollectionDispatch, CollectionRouter
from gateway.routes.exchange import exchange_routers
from gateway.routes.modules import ModuleListing
from gateway.services import open_services
from gateway.settings import Settings
from gateway.store.source import StoreSource
from gateway.subscriptions.runtime import open_runtime
from gateway.telemetry import Telemetry, TelemetryMiddleware
from schemas import SchemaRegistry

SERVER_GC_THRESHOLDS = (50_000, 20, 100)
"""A young-generation collection every 50,000 container allocations instead of 700. A batch keeps thousands of
parsed entities alive per chunk, and at 700 the collector kept re-walking them: in a one-off comparison (the
batch phase of ``bench/exchange.py`` against hubs started with and without these thresholds, interleaved), the
SQLite batch ran at 20-24k entities/s with the default and 24-27k with this."""

FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own telemetry, off: the hub's server span and duration measurement are
:class:`~gateway.telemetry.TelemetryMiddleware`'s, on the app's providers. FastAPI's would add a second span and
duration per request on the process-wide providers, once anything configured those; and off, FastAPI no longer asks
those providers whether they are configured on every request (three look-ups, ~6.5 us a request)."""


def create_app(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    routers: Sequence[APIRouter] | None = None,
    server_gc: bool = False,
) -> FastAPI:
    """The hub's app for ``settings``; tests may pass in-memory ``telemetry`` and extra ``routers``.

    ``server_gc`` sets the process's garbage-collector thresholds to :data:`SERVER_GC_THRESHOLDS` once the app
    has started: a setting for a server process, not for one app among many in a test run."""
    telemetry = telemetry or Telemetry.from_settings(settings)

    registry = SchemaRegistry.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_services(settings, background=True) as services:
            app.state.services = services
            modules = ModuleListing(services.engine)
            await modules.refresh()
            # The open-data catalogue reads the exchange store through its narrow read interface only.
            app.state.catalogue = Catalogue(
                services.engine,
                StoreSource(services.engine),
                registry,
                CatalogueSettings(site_url=settings.issuer),
                modules=modules,
            )
            refresher = asyncio.create_task(modules.run(every=30.0))
            if server_gc:
                gc.set_threshold(*SERVER_GC_THRESHOLDS)
            try:
                async with (
                    app.state.catalogue,
                    open_runtime(services, registry) as runtime,
                    running_engine(services.engine, registry, settings.kpi_interval_seconds),
                ):
                    app.state.subscriptions = runtime
                    # set by the server as it stops, to end event streams (gateway.draining)
                    yield {DRAINING: asyncio.Event()}
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
        telemetry.shutdown()

    app = FastAPI(
        title="Qala hub",
        summary="Interoperability hub for Kazakh smart cities: OAuth 2.0 gateway and exchange API.",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from gateway.routes.apidocs, without a CDN
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.registry = registry  # one loaded registry per app: the exchange and its documents share it
    app.state.telemetry = telemetry
    install_error_handlers(app)
    every = [*ROUTERS, *exchange_routers(registry), *(routers or ()), cityscore_pages(), *catalogue_routers()]
    # The collection routes go first: they are most of the traffic, FastAPI tries routes in order, and each router
    # before them cost every request a search through its routes. Going first changes no answer, because no other
    # route may take a path under a collection (check_apart refuses to build such an app), and costs every other
    # request one look at its path (CollectionRouter.matches).
    collections = [router for router in every if isinstance(router, CollectionRouter)]
    others = [router for router in every if not isinstance(router, CollectionRouter)]
    for collection_router in collections:
        collection_router.check_apart(route for other in others for route in other.routes)
    for router in [*collections, *others]:
        app.include_router(router)
    # The five operations of every collection skip FastAPI's route search and request handler (CollectionDispatch).
    app.router.middleware_stack = CollectionDispatch(collections, app.router, app.router.middleware_stack)
    documents.install(app, registry, settings.token_endpoint, settings.issuer)
    apidocs.install(app)
    # add_middleware wraps: the last one added runs first.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(InputGuardMiddleware)  # inside the body limit: it buffers bounded bodies only
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        per_path={"/api/v1/batch": settings.batch_max_bytes},
    )
    app.add_middleware(TelemetryMiddleware, telemetry=telemetry)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory gateway.app:app_from_environment``: settings from ``QALA_*``."""
    return create_app(Settings(), server_gc=True)
