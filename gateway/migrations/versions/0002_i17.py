"""subscriptions and their delivery log

Revision ID: 0002_i17
Revises: 0002_i15a
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_i17"
down_revision = "0002_i15a"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("types", JSON, nullable=False),
        sa.Column("cities", JSON, nullable=False),
        sa.Column("filters", JSON, nullable=False),
        sa.Column("bbox", JSON, nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("previous_secret_sealed", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("pending_id", sa.String(length=64), nullable=True),
        sa.Column("pending_end", sa.BigInteger(), nullable=True),
        sa.Column("pending_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_client_id"), ["client_id"], unique=False)
        batch_op.create_index("ix_subscriptions_due", ["state", "delivery", "next_attempt_at"], unique=False)

    op.create_table(
        "subscription_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_deliveries")),
    )
    with op.batch_alter_table("subscription_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_deliveries_log", ["subscription_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscription_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_deliveries_log")
    op.drop_table("subscription_deliveries")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_due")
        batch_op.drop_index(batch_op.f("ix_subscriptions_client_id"))
    op.drop_table("subscriptions")
