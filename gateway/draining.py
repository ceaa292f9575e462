"""Ending endless responses when the server stops.

On SIGTERM or Ctrl+C uvicorn stops accepting, then waits for every open response to finish before it runs the
app's lifespan shutdown. An event stream (``GET /api/v1/stream``) does not finish by itself: with one consumer
connected, ``qala serve`` waited until that consumer's token expired, and the lifespan's clean-up never ran in time
for a supervisor that kills after a grace period.

So the app puts an :class:`asyncio.Event` in its lifespan state under :data:`DRAINING`, long responses end when it
is set, and :class:`DrainingServer` sets it as it begins to shut down::

    DrainingServer(uvicorn.Config(app, port=8000)).run()

A consumer sees its stream end cleanly and reconnects (an ``EventSource`` does by itself) with ``Last-Event-ID`` to
whichever worker is still serving; nothing is lost, since each event's id is its place in the change feed.
Ordinary requests are left to finish, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

DRAINING = "server_draining"  # the key in the ASGI lifespan state (and so in every request's ``request.state``)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that sets the app's :data:`DRAINING` event when it begins to shut down."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        draining = self.lifespan.state.get(DRAINING)
        if isinstance(draining, asyncio.Event):
            # Streams wake on their next turn, which comes once uvicorn has stopped accepting and asked each
            # connection to close after its response (below): none of them is taken up again.
            draining.set()
        await super().shutdown(sockets)
