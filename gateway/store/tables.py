"""Tables of the exchange store.

One row per entity holds its canonical payload and the hub's metadata about it (kept outside the payload):
who published it, when the hub received it, its version and the schema version it was validated against.
``seq`` is the position of the entity's latest change in the hub-wide change feed: every write takes the next
numbers from ``entity_sequence`` while holding that row's lock, so commit order equals sequence order and a
reader that has seen ``seq`` n never later finds a smaller one appear. A deleted entity stays as a tombstone
(``deleted``, no payload) so the change feed can tell downstream systems about the deletion.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gateway.db import JsonColumn, metadata

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("city", sa.String(32), nullable=False),
    sa.Column("payload", JsonColumn, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("date_modified", sa.Float, nullable=True, doc="dateModified as POSIX seconds, for updatedSince"),
    sa.Column("min_lon", sa.Float, nullable=True),
    sa.Column("min_lat", sa.Float, nullable=True),
    sa.Column("max_lon", sa.Float, nullable=True),
    sa.Column("max_lat", sa.Float, nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("member", sa.String(300), nullable=True),
    sa.Column("schema_version", sa.String(32), nullable=False),
    sa.Index("ix_entities_list", "collection", "deleted", "city", "id"),
    sa.Index("ix_entities_modified", "collection", "date_modified"),
    sa.Index(
        "ix_entities_payload",
        "payload",
        postgresql_using="gin",
        postgresql_ops={"payload": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql"),
)

entity_sequence = sa.Table(
    "entity_sequence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
SEQUENCE_ROW = 1

__all__ = ["entities", "entity_sequence", "postgresql", "quarantined_records"]

quarantined_records = sa.Table(
    "quarantined_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("member", sa.String(300), nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("source", sa.String(200), nullable=True),
    sa.Column("stage", sa.String(32), nullable=True),
    sa.Column("record", JsonColumn, nullable=False),
    sa.UniqueConstraint("client_id", "record_hash"),
)
"""Records an adapter could not turn into valid entities, kept at the hub with the client that sent them.

The same record sent twice (a resumed upload) is stored once: ``record_hash`` is the SHA-256 of its canonical JSON.
"""
