"""The gateway's long-lived resources, opened once per process by the app's lifespan (or by the CLI).

    async with open_services(Settings()) as services:
        await services.directory.list_clients()

Routes reach them through ``ServicesDep``; nothing is a module-level global, so several apps can live in one
process (the tests do exactly that).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditLog
from gateway.audit_sampling import AuditSampler
from gateway.audit_tree import AuditTree
from gateway.checkpoints import Checkpoints
from gateway.client_auth import ClientAuthenticator
from gateway.clients import Directory
from gateway.db import is_sqlite, make_engine
from gateway.guessing import GuessThrottle
from gateway.keys import KeyStore
from gateway.migrate import upgrade
from gateway.ratelimit import InProcessLimiter, RateLimiter, RedisLimiter
from gateway.revocation import RevocationList
from gateway.settings import Settings
from gateway.tokens import TokenIssuer, TokenVerifier


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    keys: KeyStore
    directory: Directory
    client_auth: ClientAuthenticator
    issuer: TokenIssuer
    verifier: TokenVerifier
    revocations: RevocationList
    limiter: RateLimiter
    audit: AuditLog
    tree: AuditTree
    checkpoints: Checkpoints
    http: httpx.AsyncClient
    redis: Redis | None
    throttle: GuessThrottle
    refusals: AuditSampler  # how many failed authentications get an audit record of their own


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, background: bool = False) -> AsyncIterator[Services]:
    """Open the database (creating tables), keys, Redis; with ``background``, also run periodic checkpoints."""
    pool = {"pool_size": settings.database_pool_size, "max_overflow": settings.database_max_overflow}
    engine = make_engine(settings.database_url, **({} if is_sqlite(settings.database_url) else pool))
    redis: Redis | None = None
    http = httpx.AsyncClient(timeout=5.0)
    tasks: list[asyncio.Task[None]] = []
    try:
        await upgrade(engine)  # Alembic: every table of the hub, catalogue included
        keys = KeyStore(engine, settings)
        await keys.ensure_all()
        audit = AuditLog(engine)
        await audit.ensure()
        tree = AuditTree(engine)
        await tree.ensure()
        revocations = RevocationList(engine, settings.revocation_poll_seconds)
        await revocations.load()
        directory = Directory(engine, settings)
        limiter: RateLimiter = InProcessLimiter()
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            limiter = RedisLimiter(redis, settings.rate_limit_failure_mode)
        services = Services(
            settings=settings,
            engine=engine,
            keys=keys,
            directory=directory,
            client_auth=ClientAuthenticator(engine, directory, settings),
            issuer=TokenIssuer(settings, keys),
            verifier=TokenVerifier(settings, keys, revocations, http),
            revocations=revocations,
            limiter=limiter,
            audit=audit,
            tree=tree,
            checkpoints=Checkpoints(engine, keys, tree, settings.issuer),
            http=http,
            redis=redis,
            throttle=GuessThrottle(limiter, settings),
            refusals=AuditSampler(
                per_source=settings.audit_refusals_per_source,
                total=settings.audit_refusals_total,
                window=settings.auth_failure_window_seconds,
            ),
        )
        if background:
            interval = settings.audit_checkpoint_seconds
            tasks.append(asyncio.create_task(services.checkpoints.run_periodically(audit, interval)))
        yield services
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await http.aclose()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a round trip per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
