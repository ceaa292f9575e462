"""subscription payloads: Qala's batch or an NGSI-LD Notification

Subscriptions made through the NGSI-LD facade are delivered as NGSI-LD Notifications: ``payload`` names the
shape (``qala``, the default every existing subscription keeps; ``ngsi-ld-normalized``; ``ngsi-ld-keyValues``)
and ``payload_attributes`` the attributes an NGSI-LD notification keeps (all when null).

Revision ID: 0002_i20
Revises: 0002_i19
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_i20"
down_revision = "0002_i19"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.String(length=24), server_default="qala", nullable=False))
        batch_op.add_column(sa.Column("payload_attributes", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("payload_attributes")
        batch_op.drop_column("payload")
