"""Optional fan-out of committed changes to NATS JetStream, for cities that outgrow webhook delivery.

With ``QALA_NATS_URL`` set, each hub process follows the change feed and publishes every change to the subject
``qala.changes.<city>.<Type>`` of the stream ``QALA_CHANGES`` (made when missing), so many consumers scale out
on NATS instead of on the hub. Only the public view is published: personal (``x-personal``) fields never leave
through NATS, whose consumers the hub's scopes do not cover. Each message carries ``Nats-Msg-Id`` = the feed
position, so JetStream drops the copy a second hub process (or a restart) publishes; on start the publisher
resumes after the feed position of the stream's last message.

    publisher = NatsFanout(engine, registry, "nats://127.0.0.1:4222")
    await publisher.run()       # until cancelled
"""

from __future__ import annotations

import asyncio
import logging

import nats
import orjson
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.subscriptions.feed import FeedCache, head
from gateway.subscriptions.worker import render
from schemas import SchemaRegistry

logger = logging.getLogger("qala.fanout")
STREAM = "QALA_CHANGES"
SUBJECTS = "qala.changes.>"
PAGE = 1000


def subject(city: str, type_name: str) -> str:
    """The subject of a change: ``qala.changes.astana.ServiceRequest``."""
    return f"qala.changes.{city}.{type_name}"


class NatsFanout:
    def __init__(
        self, engine: AsyncEngine, registry: SchemaRegistry, url: str, *, feed: FeedCache | None = None
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.url = url
        self.feed = feed or FeedCache(engine)
        self.collections = tuple(s.collection for s in registry.latest())

    async def run(self, every: float = 0.1) -> None:
        """Publish until cancelled; a lost connection or a NATS error is logged and the publisher starts over
        from the stream's last message."""
        while True:
            try:
                await self._publish(every)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("publishing to NATS at %s failed; retrying in 2 s", self.url)
                await asyncio.sleep(2.0)

    async def _publish(self, every: float) -> None:
        client = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1)
        try:
            stream = client.jetstream()
            try:
                await stream.stream_info(STREAM)
            except NotFoundError:
                await stream.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECTS]))
            position = await self._published(stream)
            while True:
                upto = await head(self.engine)
                while position < upto:
                    rows = await self.feed.scan(position, upto, self.collections, PAGE)
                    for row in rows:
                        body = orjson.dumps(render(row, self.registry, personal=False))
                        headers = {"Nats-Msg-Id": str(row.seq), "Qala-Seq": str(row.seq)}
                        await stream.publish(subject(row.city, row.type), body, headers=headers)
                    position = rows[-1].seq if len(rows) == PAGE else upto
                await asyncio.sleep(every)
        finally:
            await client.close()

    @staticmethod
    async def _published(stream: nats.js.JetStreamContext) -> int:
        """The feed position of the last change already in the stream (0 for an empty stream)."""
        info = await stream.stream_info(STREAM)
        if not info.state.last_seq:
            return 0
        last = await stream.get_msg(STREAM, info.state.last_seq)
        return int((last.headers or {}).get("Qala-Seq", 0))
