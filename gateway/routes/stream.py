"""``GET /api/v1/stream``: changes as Server-Sent Events, for dashboards and situation centres.

Each event's ``id`` is a change-feed cursor, so a client that reconnects with ``Last-Event-ID`` (browsers do it
by themselves) resumes exactly after the last change it saw. The selection is a list's: ``types``, ``cities``
(comma-separated), equality filters as ``filter.<field>=<value>``, ``bbox``; or ``subscription=<id>`` for a
stream subscription's. A comment line every ``QALA_STREAM_HEARTBEAT_SECONDS`` keeps proxies from closing the
connection. Memory stays bounded: events are read from the feed only as fast as the consumer takes them, and
a consumer that takes nothing for ``QALA_STREAM_STALL_SECONDS`` is cut off. The stream ends when the access
token expires, and when the server shuts down (``gateway.draining``); the client reconnects with a fresh token
and ``Last-Event-ID``.

    curl -N -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8000/api/v1/stream?types=ServiceRequest"
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.auth import Caller, CallerDep
from gateway.draining import DRAINING
from gateway.errors import BadRequest, InsufficientScope, NotFound
from gateway.services import ServicesDep
from gateway.store.cursor import CursorCodec
from gateway.subscriptions.feed import HeadWatcher
from gateway.subscriptions.selection import Selection
from gateway.subscriptions.store import FEED_QUERY, SubscriptionStore
from gateway.subscriptions.worker import render

router = APIRouter(prefix="/api/v1", tags=["subscriptions"])
logger = logging.getLogger("qala.stream")
PAGE = 500
CLOSING = b": the server is shutting down; reconnect\n\n"


class EventStream(Response):
    """A text/event-stream response that never buffers ahead of its consumer and cuts off a stalled one."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], stall_seconds: float, draining: asyncio.Event) -> None:
        super().__init__(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        # No body given, so Response declared a length of 0; a stream has none.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.events = events
        self.stall_seconds = stall_seconds
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        ended = False  # the response's last message is with the server

        async def finish(body: bytes) -> None:
            nonlocal ended
            async with asyncio.timeout(self.stall_seconds):  # a stalled consumer is cut off, as below
                await send({"type": "http.response.body", "body": body, "more_body": False})
            ended = True

        async def pump() -> None:
            async for chunk in self.events:
                if self.draining.is_set():
                    break
                # The server's send waits while the socket's buffer is full: a consumer that reads nothing makes
                # it wait here, with nothing queued behind it, until the stall limit cuts the consumer off. The
                # wait comes before the write, so a cancelled send has sent nothing: events go whole or not at all.
                async with asyncio.timeout(self.stall_seconds):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await finish(CLOSING if self.draining.is_set() else b"")

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.create_task(pump())
        others = [asyncio.create_task(disconnected()), asyncio.create_task(self.draining.wait())]
        try:
            done, _ = await asyncio.wait([pumping, *others], return_when=asyncio.FIRST_COMPLETED)
            if pumping in done:
                error = pumping.exception()
                if isinstance(error, TimeoutError):
                    # Returning without finishing the response makes the server close the connection.
                    logger.warning("event-stream consumer stalled for %ss: cut off", self.stall_seconds)
                elif error is not None:
                    logger.error("event stream failed", exc_info=error)
            elif self.draining.is_set():
                # The server is stopping: end the response properly, so the consumer reconnects elsewhere with the
                # last id it saw. The pump waits for the next change until it is cancelled.
                await _stop(pumping)
                if not ended:
                    with contextlib.suppress(TimeoutError):
                        await finish(CLOSING)
        finally:
            for task in [pumping, *others]:
                await _stop(task)


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, asking again if a cancel is lost: on Python 3.11 an
    ``asyncio.wait_for`` whose awaitable has just finished drops one (asyncpg waits that way too)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled():
        task.exception()  # retrieved: what matters of it was logged above


def _selection(request: Request, caller: Caller, registry: Any) -> Selection:
    params = request.query_params
    readable = [s.type_name for s in registry.latest() if caller.has_scope(f"{s.collection}:read")]
    body: dict[str, Any] = {
        "types": [t.strip() for t in params["types"].split(",") if t.strip()] if params.get("types") else readable,
        "cities": [c.strip() for c in params.get("cities", params.get("city", "")).split(",") if c.strip()],
        "filters": {k.removeprefix("filter."): v for k, v in params.items() if k.startswith("filter.")},
        "bbox": params.get("bbox"),
    }
    if not body["types"]:
        raise InsufficientScope("<collection>:read")
    return Selection.parse(body, registry)


def _event(cursor: str, data: dict[str, Any]) -> bytes:
    return b"id: " + cursor.encode() + b"\nevent: change\ndata: " + orjson.dumps(data) + b"\n\n"


async def _events(
    selection: Selection,
    position: int,
    *,
    caller: Caller,
    request: Request,
    watcher: HeadWatcher,
    codec: CursorCodec,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    feed = request.app.state.subscriptions.feed
    registry = request.app.state.registry
    yield b"retry: 2000\n: connected\n\n"
    while time.time() < caller.expires_at:
        upto = await watcher.wait_beyond(position, timeout=heartbeat)
        if upto <= position:
            yield b": heartbeat\n\n"
            continue
        while position < upto:
            rows = await feed.scan(position, upto, selection.collections, PAGE)
            for row in rows:
                if selection.matches(row) and caller.may_read(row.city):
                    # personal fields only of the caller's own cities, as every read of the hub
                    personal = caller.may_read_personal(row.collection, row.city)
                    yield _event(codec.encode(str(row.seq), FEED_QUERY), render(row, registry, personal))
            position = rows[-1].seq if len(rows) == PAGE else upto


@router.get("/stream", summary="Changes as Server-Sent Events; resume with Last-Event-ID.")
async def stream(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    registry = request.app.state.registry
    codec = CursorCodec(services.settings.secret)
    runtime = request.app.state.subscriptions
    subscription_id = request.query_params.get("subscription")
    if subscription_id:
        subscription = await SubscriptionStore(services.engine, registry, services.settings).get(subscription_id)
        if subscription.client_id != caller.client_id:
            raise NotFound(f"no subscription {subscription_id!r}")
        if subscription.delivery != "stream":
            raise BadRequest(f"subscription {subscription_id} is delivered by webhook, not by stream")
        selection, position = subscription.selection, subscription.position
    else:
        selection, position = _selection(request, caller, registry), runtime.watcher.head
    for collection in selection.collections:
        if not caller.has_scope(f"{collection}:read"):
            raise InsufficientScope(f"{collection}:read")
    resume = request.headers.get("last-event-id") or request.query_params.get("since")
    if resume:
        position = int(codec.decode(resume, FEED_QUERY))
    settings = services.settings
    events = _events(
        selection,
        position,
        caller=caller,
        request=request,
        watcher=runtime.watcher,
        codec=codec,
        heartbeat=settings.stream_heartbeat_seconds,
    )
    # an app run without its lifespan's state (some tests) has no server to drain it: an event never set
    draining = getattr(request.state, DRAINING, None) or asyncio.Event()
    return EventStream(events, settings.stream_stall_seconds, draining)
