"""Each client may have default scopes: what a token request without ``scope`` is granted (RFC 6749 section 3.3)

NULL keeps the behaviour of every earlier hub (every scope the client holds), so existing clients are unchanged.

Revision ID: 0002_i20_default_scopes
Revises: 0002_i20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_i20_default_scopes"
down_revision = "0002_i20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "default_scopes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("default_scopes")
