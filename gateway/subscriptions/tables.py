"""Tables of subscriptions and their delivery log.

A subscription's position is a change-feed position (``entities.seq``): the change log is the outbox, so
nothing is copied into a second queue. ``pending_id``/``pending_end`` hold the batch being delivered, so a retry
(after a failure, or after the delivery process was killed) sends the same ``webhook-id`` for the same changes
and a receiver that de-duplicates by it sees each change once. ``generation`` grows on every owner's change of
selection or position (replay, PATCH): a delivery worker only commits progress for the generation it read.
``lease_owner``/``lease_until`` say which delivery process works on the subscription now. ``payload`` is the
shape of its deliveries (Qala's batch, or an NGSI-LD Notification keeping ``payload_attributes``; see
:mod:`gateway.subscriptions.payload`).
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.db import JsonColumn, metadata

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("types", JsonColumn, nullable=False),
    sa.Column("cities", JsonColumn, nullable=False),
    sa.Column("filters", JsonColumn, nullable=False),
    sa.Column("bbox", JsonColumn, nullable=True),
    sa.Column("delivery", sa.String(16), nullable=False),
    sa.Column("url", sa.String(2000), nullable=True),
    sa.Column("payload", sa.String(24), nullable=False, server_default="qala"),
    sa.Column("payload_attributes", JsonColumn, nullable=True),
    sa.Column("secret_sealed", sa.Text, nullable=True),
    sa.Column("previous_secret_sealed", sa.Text, nullable=True),
    sa.Column("previous_secret_until", sa.Float, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("pending_id", sa.String(64), nullable=True),
    sa.Column("pending_end", sa.BigInteger, nullable=True),
    sa.Column("pending_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("failing_since", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_subscriptions_due", "state", "delivery", "next_attempt_at"),
)

subscription_deliveries = sa.Table(
    "subscription_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.String(40), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("webhook_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("worker", sa.String(64), nullable=True),
    sa.Index("ix_subscription_deliveries_log", "subscription_id", "id"),
)
"""One row per attempt: what was sent (webhook id, feed range, event count), the answer and how long it took."""
