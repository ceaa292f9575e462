"""What a hub process runs for subscriptions: the feed's head watcher and, by default, a delivery worker.

    async with open_runtime(services, registry) as runtime:
        app.state.subscriptions = runtime      # the event stream waits on runtime.watcher

``QALA_DELIVERY_IN_PROCESS=false`` leaves delivery to ``qala deliver`` processes (the scale path);
``QALA_NATS_URL`` adds the fan-out of every committed change to NATS JetStream (:mod:`.fanout`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.services import Services
from gateway.subscriptions.feed import FeedCache, HeadWatcher
from gateway.subscriptions.worker import DeliveryWorker
from schemas import SchemaRegistry


@dataclass
class Runtime:
    watcher: HeadWatcher
    feed: FeedCache
    worker: DeliveryWorker | None


@contextlib.asynccontextmanager
async def open_runtime(services: Services, registry: SchemaRegistry) -> AsyncIterator[Runtime]:
    settings = services.settings
    watcher = await HeadWatcher(services.engine, every=settings.delivery_poll_seconds).start()
    feed = FeedCache(services.engine)
    worker = None
    task: asyncio.Task[None] | None = None
    if settings.delivery_in_process:
        worker = DeliveryWorker(services.engine, services.audit, registry, settings, feed=feed)
        task = asyncio.create_task(worker.run())
    tasks = [task] if task is not None else []
    if settings.nats_url:
        from gateway.subscriptions.fanout import NatsFanout  # noqa: PLC0415 -- nats-py is an optional extra

        fanout = NatsFanout(services.engine, registry, settings.nats_url, feed=feed)
        tasks.append(asyncio.create_task(fanout.run(every=settings.delivery_poll_seconds)))
    try:
        yield Runtime(watcher, feed, worker)
    finally:
        for running in tasks:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
        await watcher.stop()
