"""The delivery worker: reads the change feed from each subscription's position and sends it on.

Durable and ordered because the feed is the outbox: a subscription's position only moves once its receiver has
answered 2xx, in the same transaction that writes the delivery log and the audit record. Before a batch is sent
its range and ``webhook-id`` are saved as *pending*, so a retry, even by another process after this one was
killed, sends the same message id for the same changes: at least once, and exactly once for a receiver that
de-duplicates by ``webhook-id``. A batch is Qala's change batch or, for a subscription made through the NGSI-LD
facade, an NGSI-LD Notification (:mod:`.payload`); either is redacted for the owner in the same way.

Several workers (``qala deliver`` processes, hub workers) share the subscriptions through leases: a worker
claims due subscriptions with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite's single writer does
the same), works on each for a short slice and lets go. Every progress update names the lease owner and the
subscription's generation, so a worker that lost its lease, or whose subscription was replayed meanwhile,
commits nothing.

    worker = DeliveryWorker(engine, audit, registry, settings)
    await worker.run()          # until cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditLog, AuditRecord
from gateway.auth import Caller
from gateway.clients import Directory, clients
from gateway.db import writer
from gateway.settings import Settings
from gateway.store.cursor import CursorCodec
from gateway.store.records import StoredEntity
from gateway.store.tables import entity_sequence
from gateway.subscriptions.feed import FeedCache, head
from gateway.subscriptions.payload import Payload, notification_head
from gateway.subscriptions.sender import SendResult, backoff, send
from gateway.subscriptions.store import FEED_QUERY, Subscription, SubscriptionStore
from gateway.subscriptions.tables import subscription_deliveries, subscriptions
from gateway.subscriptions.targets import UnsafeTarget, vet
from schemas import SchemaRegistry
from schemas.ngsi_ld import context_link, represent

logger = logging.getLogger("qala.subscriptions")
SCAN_PAGE = 1000
RENDER_CACHE = 50_000
SLICE_SECONDS = 1.0
"""How long a worker keeps one subscription before letting others (and other subscriptions) have a turn."""


def _visible(change: StoredEntity, registry: SchemaRegistry, personal: bool) -> dict[str, Any] | None:
    """The changed entity (None for a deletion), redacted unless its reader may read personal data."""
    entity = change.payload
    if entity is not None and not personal:
        entity = registry.get(change.type).redact(entity)
    return entity


def render(change: StoredEntity, registry: SchemaRegistry, personal: bool) -> dict[str, Any]:
    """One change as a subscriber receives it: the feed's shape, redacted unless it may read personal data."""
    entity = _visible(change, registry, personal)
    return {
        "seq": change.seq,
        "op": "delete" if entity is None else "upsert",
        "id": change.id,
        "type": change.type,
        "collection": change.collection,
        "city": change.city,
        "version": change.version,
        "receivedAt": change.received_at,
        "entity": entity,
    }


def render_entity(change: StoredEntity, registry: SchemaRegistry, personal: bool, payload: Payload) -> dict[str, Any]:
    """A changed entity as an NGSI-LD notification carries it: redacted first, exactly as :func:`render` does,
    then in the payload's entity format with its attributes only."""
    entity, form = _visible(change, registry, personal), payload.entity_format
    if entity is None or form is None:
        raise ValueError(f"change {change.seq} has no entity to notify in an NGSI-LD payload")
    return represent(registry.get(change.type), entity, form, payload.attributes)


class DeliveryWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        audit: AuditLog,
        registry: SchemaRegistry,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        name: str | None = None,
        feed: FeedCache | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.registry = registry
        self.settings = settings
        self.store = SubscriptionStore(engine, registry, settings)
        self.directory = Directory(engine, settings)
        self.codec = CursorCodec(settings.secret)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._http = http
        self.feed = feed or FeedCache(engine)
        self._active: dict[str, asyncio.Task[None]] = {}
        # NGSI-LD notifications are application/json, so their @context travels in a Link header (§6.3.5)
        self._context_link = context_link(settings.issuer)
        self._render_cache: OrderedDict[tuple[int, int, bool, Payload], bytes] = OrderedDict()

    async def run(self) -> None:
        """Deliver until cancelled: claim due subscriptions into free slots, otherwise wait a poll interval."""
        own_http = self._http is None
        http = self._http or httpx.AsyncClient(limits=httpx.Limits(max_connections=200))
        try:
            while True:
                free = self.settings.delivery_concurrency - len(self._active)
                claimed = await self._claim(free) if free > 0 else []
                for subscription_id in claimed:
                    task = asyncio.create_task(self._serve(http, subscription_id))
                    self._active[subscription_id] = task
                    task.add_done_callback(self._forget)
                if not claimed:
                    await asyncio.sleep(self.settings.delivery_poll_seconds)
        finally:
            for task in list(self._active.values()):
                task.cancel()
            for task in list(self._active.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own_http:
                await http.aclose()

    def _rendered(self, change: StoredEntity, personal: bool, payload: Payload) -> bytes:
        """A change's JSON, made once for every subscription that receives it (redacted or not, in each shape)."""
        key = (change.seq, change.version, personal, payload)
        found = self._render_cache.get(key)
        if found is None:
            if payload.entity_format is None:
                found = orjson.dumps(render(change, self.registry, personal))
            else:
                found = orjson.dumps(render_entity(change, self.registry, personal, payload))
            self._render_cache[key] = found
            if len(self._render_cache) > RENDER_CACHE:
                self._render_cache.popitem(last=False)
        return found

    def _forget(self, task: asyncio.Task[None]) -> None:
        for key, running in list(self._active.items()):
            if running is task:
                del self._active[key]

    # -- leases ---------------------------------------------------------------------------------

    def _due(self, now: float) -> Any:
        return sa.and_(
            subscriptions.c.state == "active",
            subscriptions.c.delivery == "webhook",
            subscriptions.c.next_attempt_at <= now,
            sa.or_(subscriptions.c.lease_until.is_(None), subscriptions.c.lease_until < now),
            sa.or_(
                subscriptions.c.pending_id.is_not(None),
                subscriptions.c.position < sa.select(entity_sequence.c.value).scalar_subquery(),
            ),
            subscriptions.c.client_id.in_(sa.select(clients.c.client_id).where(clients.c.enabled.is_(True))),
        )

    async def _claim(self, limit: int) -> list[str]:
        """Take leases on up to ``limit`` due subscriptions; a cheap read first, a write only when some are due."""
        now = time.time()
        base = sa.select(subscriptions.c.id).where(self._due(now))
        if self._active:
            base = base.where(subscriptions.c.id.not_in(list(self._active)))
        async with self.engine.connect() as conn:
            if not (await conn.execute(base.limit(1))).first():
                return []
        query = base.order_by(subscriptions.c.next_attempt_at, subscriptions.c.position).limit(limit)
        async with writer(self.engine), self.engine.begin() as conn:
            ids = list((await conn.execute(query.with_for_update(skip_locked=True))).scalars())
            if ids:
                await conn.execute(
                    subscriptions.update()
                    .where(subscriptions.c.id.in_(ids))
                    .values(lease_owner=self.name, lease_until=now + self.settings.delivery_lease_seconds)
                )
        return ids

    async def _release(self, subscription_id: str) -> None:
        async with writer(self.engine), self.engine.begin() as conn:
            await conn.execute(
                subscriptions.update()
                .where(subscriptions.c.id == subscription_id, subscriptions.c.lease_owner == self.name)
                .values(lease_owner=None, lease_until=None)
            )

    def _mine(self, subscription: Subscription) -> Any:
        return sa.and_(
            subscriptions.c.id == subscription.id,
            subscriptions.c.lease_owner == self.name,
            subscriptions.c.generation == subscription.generation,
            subscriptions.c.state == "active",
        )

    async def _guarded(self, subscription: Subscription, **values: Any) -> bool:
        """Update the subscription if this worker still holds it at the generation it read."""
        values.setdefault("lease_until", time.time() + self.settings.delivery_lease_seconds)
        async with writer(self.engine), self.engine.begin() as conn:
            result = await conn.execute(subscriptions.update().where(self._mine(subscription)).values(**values))
        return result.rowcount == 1

    # -- one subscription -----------------------------------------------------------------------

    async def _serve(self, http: httpx.AsyncClient, subscription_id: str) -> None:
        try:
            subscription: Subscription | None = await self.store.get(subscription_id)
            until = time.monotonic() + SLICE_SECONDS
            while subscription is not None and time.monotonic() < until:
                owner = await self._owner(subscription.client_id)  # before every batch: access is read now
                if owner is None:
                    break
                subscription, idle = await self._deliver_one(http, subscription, owner)
                if idle and len(self._active) >= self.settings.delivery_concurrency:
                    break  # caught up, and others may wait for a slot: let go
                if idle:  # caught up with slots to spare: keep the lease and wait for the next commits here,
                    # instead of a release and a new claim (two more write transactions) every poll
                    await asyncio.sleep(self.settings.delivery_poll_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("delivery of subscription %s failed", subscription_id)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(subscription_id))

    async def _owner(self, client_id: str) -> Caller | None:
        """The subscription owner's access, read now: a client disabled, or a scope or city taken away, stops
        or narrows its deliveries at once."""
        client = await self.directory.find_client(client_id)
        return Caller.standing(client) if client is not None and client.enabled else None

    async def _deliver_one(
        self, http: httpx.AsyncClient, subscription: Subscription, owner: Caller
    ) -> tuple[Subscription | None, bool]:
        """Send the next batch (or the pending one). Returns the subscription's next state, None when this turn
        is over, and whether it has caught up with the feed (nothing to send now)."""
        if subscription.state != "active" or subscription.url is None:
            return None, False
        readable = [c for c in subscription.selection.collections if owner.has_scope(f"{c}:read")]
        if subscription.pending_id is not None and subscription.pending_end is not None:
            webhook_id, end = subscription.pending_id, subscription.pending_end
            changes = await self._matching(subscription, owner, readable, subscription.pending_end, None)
            attempt = subscription.pending_attempts + 1
        else:
            upto = await head(self.engine)
            changes = await self._matching(subscription, owner, readable, upto, self.settings.delivery_batch_size)
            full = len(changes) == self.settings.delivery_batch_size
            end = changes[-1].seq if full else upto
            if not changes:  # nothing selected up to the head: move past it without sending anything
                if end > subscription.position:
                    if not await self._guarded(subscription, position=end):
                        return None, False
                    subscription = replace(subscription, position=end)
                return subscription, True
            webhook_id, attempt = "msg_" + secrets.token_hex(12), 1
            if not await self._guarded(subscription, pending_id=webhook_id, pending_end=end, pending_attempts=0):
                return None, False
        if not changes:  # the pending range holds nothing any more (entities changed again since): skip it
            await self._guarded(subscription, position=end, pending_id=None, pending_end=None, pending_attempts=0)
            return replace(subscription, position=end, pending_id=None, pending_end=None, pending_attempts=0), False
        payload = subscription.payload
        parts = [self._rendered(c, owner.may_read_personal(c.collection, c.city), payload) for c in changes]
        if payload.entity_format is None:
            cursor = self.codec.encode(str(end), FEED_QUERY)
            body = orjson.dumps({"subscription": subscription.id, "cursor": cursor})[:-1] + b',"changes":['
        else:
            body = orjson.dumps(notification_head(subscription.id, webhook_id, time.time()))[:-1] + b',"data":['
        body += b",".join(parts) + b"]}"
        result = await self._post(http, subscription, webhook_id, body)
        delivered = await self._record(
            subscription, webhook_id=webhook_id, attempt=attempt, changes=changes, end=end, result=result
        )
        if not delivered:
            return None, False
        caught = replace(subscription, position=end, pending_id=None, pending_end=None, pending_attempts=0)
        return replace(caught, failing_since=None, last_error=None), False

    async def _matching(
        self, subscription: Subscription, owner: Caller, readable: list[str], upto: int, limit: int | None
    ) -> list[StoredEntity]:
        found: list[StoredEntity] = []
        after = subscription.position
        selection, payload = subscription.selection, subscription.payload
        while True:
            rows = await self.feed.scan(after, upto, readable, SCAN_PAGE)
            for row in rows:
                if selection.matches(row) and owner.may_read(row.city) and payload.carries(row):
                    found.append(row)
                    if limit is not None and len(found) == limit:
                        return found
            if len(rows) < SCAN_PAGE:
                return found
            after = rows[-1].seq

    async def _post(self, http: httpx.AsyncClient, subscription: Subscription, webhook_id: str, body: bytes) -> Any:
        assert subscription.url is not None
        try:
            await vet(subscription.url, self.settings)  # again: the name may point elsewhere by now
        except UnsafeTarget as exc:
            return SendResult(None, f"webhook URL refused: {exc}", 0.0)
        secrets_ = self.store.signing_secrets(subscription, time.time())
        headers = {} if subscription.payload.entity_format is None else {"Link": self._context_link}
        return await send(
            http, subscription.url, webhook_id, body, secrets_, timeout=self.settings.webhook_timeout, headers=headers
        )

    async def _record(
        self,
        subscription: Subscription,
        *,
        webhook_id: str,
        attempt: int,
        changes: list[StoredEntity],
        end: int,
        result: SendResult,
    ) -> bool:
        now = time.time()
        settings = self.settings
        values: dict[str, Any]
        if result.ok:
            values = {
                "position": end,
                "pending_id": None,
                "pending_end": None,
                "pending_attempts": 0,
                "next_attempt_at": 0.0,
                "failing_since": None,
                "last_error": None,
                "delivered": subscriptions.c.delivered + len(changes),
            }
        else:
            failing_since = subscription.failing_since or now
            delay = result.retry_after
            if delay is None:
                delay = backoff(attempt, settings.delivery_backoff_base, settings.delivery_backoff_max)
            failed = result.gone or now - failing_since >= settings.delivery_failure_window
            values = {
                "pending_attempts": attempt,
                "next_attempt_at": now + delay,
                "failing_since": failing_since,
                "last_error": result.error,
                **({"state": "failed"} if failed else {}),
            }
        values["updated_at"] = now
        values["lease_until"] = now + settings.delivery_lease_seconds
        log = {
            "subscription_id": subscription.id,
            "at": now,
            "webhook_id": webhook_id,
            "attempt": attempt,
            "first_seq": changes[0].seq,
            "last_seq": changes[-1].seq,
            "events": len(changes),
            "status": result.status,
            "error": result.error,
            "latency_ms": round(result.latency_ms, 3),
            "worker": self.name,
        }
        audit = AuditRecord(
            action="subscription.delivered" if result.ok else "subscription.delivery-failed",
            outcome="ok" if result.ok else "error",
            status=result.status,
            client_id=subscription.client_id,
            resource=subscription.id,
            detail={
                "webhookId": webhook_id,
                "attempt": attempt,
                "firstSeq": changes[0].seq,
                "lastSeq": changes[-1].seq,
                "events": len(changes),
                "latencyMs": round(result.latency_ms),
                "worker": self.name,
            },
        )
        async with writer(self.engine), self.engine.begin() as conn:
            updated = await conn.execute(subscriptions.update().where(self._mine(subscription)).values(**values))
            await conn.execute(subscription_deliveries.insert().values(**log))
            await self.audit.append(audit, conn)
        return result.ok and updated.rowcount == 1
