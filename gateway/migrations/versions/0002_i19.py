"""catalogue activity stream

The catalogue's CKAN activity stream (``package_activity_list``, ``recently_changed_packages_activity_list``):
one row per dataset created, changed or deleted.

Revision ID: 0002_i19
Revises: 0002_i17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_i19"
down_revision = "0002_i17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_activities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("activity_type", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_activities")),
    )
    with op.batch_alter_table("catalogue_activities", schema=None) as batch_op:
        batch_op.create_index("ix_catalogue_activities_object", ["object_id", "timestamp"], unique=False)
        batch_op.create_index("ix_catalogue_activities_timestamp", ["timestamp"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("catalogue_activities", schema=None) as batch_op:
        batch_op.drop_index("ix_catalogue_activities_timestamp")
        batch_op.drop_index("ix_catalogue_activities_object")
    op.drop_table("catalogue_activities")
