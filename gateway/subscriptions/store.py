"""Subscriptions in the database, as their owners see and change them.

    store = SubscriptionStore(engine, registry, settings)
    subscription, secret = await store.create("qc_1", selection, "webhook", "https://x.example/hook", position=0)
    await store.pause(subscription.id)
    await store.replay(subscription.id, position=0)     # deliver everything again, from the start of the feed

A subscription's ``payload`` says what its deliveries carry (:mod:`gateway.subscriptions.payload`): Qala's
change batch unless it was made through the NGSI-LD facade.

Every change of selection, delivery or position bumps ``generation``, so a delivery worker that read the old
state commits nothing (see :mod:`gateway.subscriptions.worker`). Pausing does not: a delivery under way when
the owner pauses stays pending and is sent again, with the same ``webhook-id``, on resume.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import writer
from gateway.errors import Conflict, NotFound
from gateway.settings import Settings
from gateway.store.cursor import CursorCodec
from gateway.subscriptions.payload import Payload, payload_of
from gateway.subscriptions.selection import Selection
from gateway.subscriptions.signing import SecretSealer, new_secret
from gateway.subscriptions.tables import subscription_deliveries, subscriptions
from schemas import SchemaRegistry

FEED_QUERY = {"feed": "changes"}
"""Subscription positions are change-feed cursors: the same opaque token as ``GET /api/v1/changes`` gives."""

Delivery = Literal["webhook", "stream"]
QALA_PAYLOAD = Payload()


@dataclass(frozen=True)
class Subscription:
    id: str
    client_id: str
    name: str | None
    selection: Selection
    delivery: Delivery
    url: str | None
    state: str
    position: int
    generation: int
    pending_id: str | None
    pending_end: int | None
    pending_attempts: int
    next_attempt_at: float
    failing_since: float | None
    last_error: str | None
    delivered: int
    created_at: float
    updated_at: float
    secret_sealed: str | None
    previous_secret_sealed: str | None
    previous_secret_until: float | None
    payload: Payload = field(default_factory=Payload)

    def as_json(self, codec: CursorCodec) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.client_id,
            "name": self.name,
            **self.selection.as_json(),
            "delivery": {"kind": self.delivery, "url": self.url},
            "payload": self.payload.as_json(),
            "state": self.state,
            "cursor": codec.encode(str(self.position), FEED_QUERY),
            "delivered": self.delivered,
            "pending": None
            if self.pending_id is None
            else {
                "webhookId": self.pending_id,
                "attempts": self.pending_attempts,
                "nextAttemptAt": self.next_attempt_at,
            },
            "failingSince": self.failing_since,
            "lastError": self.last_error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def subscription_of(row: Any, registry: SchemaRegistry) -> Subscription:
    schemas = [registry.get(name) for name in row.types]
    selection = Selection(
        types=tuple(s.type_name for s in schemas),
        collections=tuple(s.collection for s in schemas),
        cities=tuple(row.cities),
        filters=dict(row.filters),
        bbox=tuple(row.bbox) if row.bbox else None,
    )
    return Subscription(
        row.id,
        row.client_id,
        row.name,
        selection,
        row.delivery,
        row.url,
        row.state,
        int(row.position),
        int(row.generation),
        row.pending_id,
        None if row.pending_end is None else int(row.pending_end),
        int(row.pending_attempts),
        float(row.next_attempt_at),
        row.failing_since,
        row.last_error,
        int(row.delivered),
        float(row.created_at),
        float(row.updated_at),
        row.secret_sealed,
        row.previous_secret_sealed,
        row.previous_secret_until,
        payload_of(row.payload, row.payload_attributes),
    )


def selection_values(selection: Selection) -> dict[str, Any]:
    return {
        "types": list(selection.types),
        "cities": list(selection.cities),
        "filters": selection.filters,
        "bbox": list(selection.bbox) if selection.bbox else None,
    }


def payload_values(payload: Payload) -> dict[str, Any]:
    attributes = None if payload.attributes is None else list(payload.attributes)
    return {"payload": payload.format, "payload_attributes": attributes}


@dataclass(frozen=True)
class DeliverySummary:
    """A subscription's delivery log in figures: attempts (failed ones too) and the latest of each outcome."""

    attempts: int = 0
    failed: int = 0
    last_attempt: float | None = None
    last_success: float | None = None
    last_failure: float | None = None


class SubscriptionStore:
    def __init__(self, engine: AsyncEngine, registry: SchemaRegistry, settings: Settings) -> None:
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.sealer = SecretSealer(settings.secret)

    async def create(
        self,
        client_id: str,
        selection: Selection,
        delivery: Delivery,
        url: str | None,
        *,
        position: int,
        name: str | None = None,
        payload: Payload = QALA_PAYLOAD,
        subscription_id: str | None = None,
    ) -> tuple[Subscription, str | None]:
        """A new active subscription starting after feed position ``position``; its secret (webhooks only).

        ``subscription_id`` is made up unless the caller names it (NGSI-LD lets a subscriber choose); a name
        already taken is a :class:`Conflict`."""
        subscription_id = subscription_id or "sub_" + secrets.token_hex(10)
        secret = new_secret() if delivery == "webhook" else None
        now = time.time()
        values = {
            "id": subscription_id,
            "client_id": client_id,
            "name": name,
            **selection_values(selection),
            **payload_values(payload),
            "delivery": delivery,
            "url": url,
            "secret_sealed": self.sealer.seal(subscription_id, secret) if secret else None,
            "state": "active",
            "position": position,
            "generation": 0,
            "pending_attempts": 0,
            "next_attempt_at": 0.0,
            "delivered": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with writer(self.engine), self.engine.begin() as conn:
                await conn.execute(subscriptions.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a subscription {subscription_id!r} exists already") from exc
        return await self.get(subscription_id), secret

    async def get(self, subscription_id: str) -> Subscription:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id))).first()
        if row is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        return subscription_of(row, self.registry)

    async def owned(self, subscription_id: str, client_id: str, *, admin: bool = False) -> Subscription:
        """``client_id``'s subscription (any one for an ``admin``); another client's is as missing (NotFound)."""
        subscription = await self.get(subscription_id)
        if subscription.client_id != client_id and not admin:
            raise NotFound(f"no subscription {subscription_id!r}")
        return subscription

    async def all(self, client_id: str | None = None) -> list[Subscription]:
        query = sa.select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if client_id is not None:
            query = query.where(subscriptions.c.client_id == client_id)
        async with self.engine.connect() as conn:
            return [subscription_of(row, self.registry) for row in (await conn.execute(query)).all()]

    async def _update(self, subscription_id: str, *, bump: bool, **values: Any) -> Subscription:
        values["updated_at"] = time.time()
        if bump:
            values["generation"] = subscriptions.c.generation + 1
        async with writer(self.engine), self.engine.begin() as conn:
            result = await conn.execute(
                subscriptions.update().where(subscriptions.c.id == subscription_id).values(**values)
            )
        if result.rowcount != 1:
            raise NotFound(f"no subscription {subscription_id!r}")
        return await self.get(subscription_id)

    async def change(
        self,
        subscription_id: str,
        *,
        name: str | None = None,
        selection: Selection | None = None,
        url: str | None = None,
        payload: Payload | None = None,
    ) -> Subscription:
        """Change name, selection, URL or payload; a pending delivery is dropped when the selection changes
        (with a new URL or payload it is sent again, there and in the new shape, with the same ``webhook-id``)."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if url is not None:
            values["url"] = url
        if payload is not None:
            values |= payload_values(payload)
        if selection is not None:
            values |= selection_values(selection) | {"pending_id": None, "pending_end": None, "pending_attempts": 0}
        bump = selection is not None or url is not None or payload is not None
        return await self._update(subscription_id, bump=bump, **values)

    async def pause(self, subscription_id: str) -> Subscription:
        return await self._update(subscription_id, bump=False, state="paused")

    async def resume(self, subscription_id: str) -> Subscription:
        """Active again (also after it failed), retrying a pending delivery at once."""
        return await self._update(
            subscription_id, bump=False, state="active", next_attempt_at=0.0, failing_since=None, last_error=None
        )

    async def replay(self, subscription_id: str, position: int) -> Subscription:
        """Deliver again everything after ``position``; a pending delivery is dropped (its changes follow)."""
        return await self._update(
            subscription_id,
            bump=True,
            position=position,
            pending_id=None,
            pending_end=None,
            pending_attempts=0,
            next_attempt_at=0.0,
        )

    async def rotate_secret(self, subscription_id: str) -> str:
        """A new secret; the current one keeps signing beside it for ``secret_rotation_overlap`` seconds."""
        current = await self.get(subscription_id)
        if current.secret_sealed is None:
            raise NotFound(f"subscription {subscription_id!r} is delivered by stream and has no secret")
        secret = new_secret()
        await self._update(
            subscription_id,
            bump=False,
            secret_sealed=self.sealer.seal(subscription_id, secret),
            previous_secret_sealed=current.secret_sealed,
            previous_secret_until=time.time() + self.settings.secret_rotation_overlap,
        )
        return secret

    def signing_secrets(self, subscription: Subscription, now: float) -> list[str]:
        found = []
        if subscription.secret_sealed:
            found.append(self.sealer.unseal(subscription.id, subscription.secret_sealed))
        until = subscription.previous_secret_until
        if subscription.previous_secret_sealed and until is not None and now < until:
            found.append(self.sealer.unseal(subscription.id, subscription.previous_secret_sealed))
        return found

    async def delete(self, subscription_id: str) -> None:
        async with writer(self.engine), self.engine.begin() as conn:
            result = await conn.execute(subscriptions.delete().where(subscriptions.c.id == subscription_id))
            await conn.execute(
                subscription_deliveries.delete().where(subscription_deliveries.c.subscription_id == subscription_id)
            )
        if result.rowcount != 1:
            raise NotFound(f"no subscription {subscription_id!r}")

    async def deliveries(self, subscription_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest delivery attempts, newest first."""
        query = (
            sa.select(subscription_deliveries)
            .where(subscription_deliveries.c.subscription_id == subscription_id)
            .order_by(subscription_deliveries.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "at": row.at,
                "webhookId": row.webhook_id,
                "attempt": row.attempt,
                "firstSeq": int(row.first_seq),
                "lastSeq": int(row.last_seq),
                "events": row.events,
                "status": row.status,
                "error": row.error,
                "latencyMs": row.latency_ms,
                "worker": row.worker,
            }
            for row in rows
        ]

    async def delivery_summaries(self, subscription_ids: list[str]) -> dict[str, DeliverySummary]:
        """The delivery log of each subscription in figures (subscriptions never delivered are left out)."""
        log = subscription_deliveries.c
        ok = sa.and_(log.status >= 200, log.status < 300)  # NULL (no answer at all) is a failure too
        query = (
            sa.select(
                log.subscription_id,
                sa.func.count(),
                sa.func.sum(sa.case((ok, 0), else_=1)),
                sa.func.max(log.at),
                sa.func.max(sa.case((ok, log.at))),
                sa.func.max(sa.case((ok, sa.null()), else_=log.at)),
            )
            .where(log.subscription_id.in_(subscription_ids))
            .group_by(log.subscription_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row[0]: DeliverySummary(int(row[1]), int(row[2] or 0), row[3], row[4], row[5]) for row in rows}
