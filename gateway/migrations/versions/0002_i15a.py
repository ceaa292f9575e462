"""audit transparency (Merkle tree nodes, tree roots on checkpoints) and token lifecycle (client token epochs)

Revision ID: 0002_i15a
Revises: 0002_i15b
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_i15a"
down_revision = "0002_i15b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree_nodes")),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("root_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_epoch", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("tokens_revoked_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("tokens_revoked_at")
        batch_op.drop_column("token_epoch")
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("root_hash")
    op.drop_table("audit_tree_nodes")
