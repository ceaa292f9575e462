"""The catalogue's tables, declared on the hub's shared :data:`gateway.db.metadata`.

A dataset is stored as its CKAN package dictionary (``doc``) plus the columns search and paging need; its
facet values (organisation, city, themes, tags, formats, licence) are rows of ``catalogue_facets`` so that facet
counts are one ``GROUP BY``. Full text lives in an FTS5 table on SQLite and in a GIN-indexed ``tsvector``
expression on PostgreSQL: the migrations create them, and :func:`ensure_full_text` repairs a database that lacks them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.engine import Connection

from gateway.db import JsonColumn, metadata

organizations = Table(
    "catalogue_organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(20), nullable=False, default="organization"),  # "organization" or "group"
    Column("doc", JsonColumn, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

datasets = Table(
    "catalogue_datasets",
    metadata,
    # An integer key keeps joins with facets and the SQLite full-text table (whose rowid it is) cheap.
    Column("key", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("title", Text, nullable=False, default=""),
    Column("live", Boolean, nullable=False, default=False),
    Column("owner_org", String(100), nullable=True),
    Column("metadata_created", DateTime(timezone=True), nullable=False),
    Column("metadata_modified", DateTime(timezone=True), nullable=False),
    Index("ix_catalogue_datasets_modified", "metadata_modified"),
    Index("ix_catalogue_datasets_created", "metadata_created"),
    Index("ix_catalogue_datasets_title", "title"),
)

documents = Table(
    "catalogue_documents",
    metadata,
    # Kept apart from the narrow ``datasets`` rows so that counting, filtering and sorting never read documents.
    Column("dataset_key", Integer, ForeignKey("catalogue_datasets.key", ondelete="CASCADE"), primary_key=True),
    Column("title_text", Text, nullable=False, default=""),
    Column("search_text", Text, nullable=False, default=""),
    Column("doc", JsonColumn, nullable=False),
)

facets = Table(
    "catalogue_facets",
    metadata,
    Column("dataset_key", Integer, ForeignKey("catalogue_datasets.key", ondelete="CASCADE"), nullable=False),
    Column("field", String(40), nullable=False),
    Column("value", String(200), nullable=False),
    Index("ix_catalogue_facets_field_value", "field", "value", "dataset_key"),
    Index("ix_catalogue_facets_dataset", "dataset_key", "field", "value"),
)

resources = Table(
    "catalogue_resources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("dataset_key", Integer, ForeignKey("catalogue_datasets.key", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

generation = Table(
    "catalogue_generation",
    metadata,
    # Bumped by every write in the same transaction: a search result cached under one value is valid until the
    # value changes, whichever worker or replica made the change.
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)

uploads = Table(
    "catalogue_uploads",
    metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("mimetype", String(100), nullable=False),
    Column("content", LargeBinary, nullable=False),
)

activities = Table(
    "catalogue_activities",
    metadata,
    # CKAN's activity stream: one row per dataset created, changed or deleted, whoever did it (a client through
    # package_update, or the hub re-describing a live dataset after changes arrived through the exchange).
    Column("id", String(36), primary_key=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("activity_type", String(30), nullable=False),
    Column("user_id", String(100), nullable=True),
    Column("data", JsonColumn, nullable=False),
    Index("ix_catalogue_activities_object", "object_id", "timestamp"),
    Index("ix_catalogue_activities_timestamp", "timestamp"),
)

api_tokens = Table(
    "catalogue_api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)


PG_VECTOR = "setweight(to_tsvector('simple', title_text), 'A') || setweight(to_tsvector('simple', search_text), 'D')"
"""The PostgreSQL document vector: titles, names and tags weigh more than descriptions."""


def ensure_full_text(connection: Connection) -> None:
    """Create the full-text structures if missing (idempotent), however the tables themselves were created."""
    _create_full_text(documents, connection)


def _create_full_text(target: Table, connection: Connection, **_: Any) -> None:
    # SQLite: an FTS5 table whose rowid is the dataset key, kept in step with the datasets by the store.
    # PostgreSQL: the 'simple' configuration, since no stemmer exists for Kazakh and texts mix three languages.
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS catalogue_fts USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_catalogue_documents_fts ON catalogue_documents USING GIN (({PG_VECTOR}))"
        )


def _drop_full_text(target: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TABLE IF EXISTS catalogue_fts")


event.listen(documents, "after_create", _create_full_text)
event.listen(documents, "before_drop", _drop_full_text)

frozen_periods = Table(
    "catalogue_frozen_periods",
    metadata,
    # One closed period of an aggregated live dataset, exactly as first published; never revised (catalogue.frozen).
    Column("dataset", String(200), primary_key=True),
    Column("period", String(32), primary_key=True),
    Column("rows", JsonColumn, nullable=False),
    Column("frozen_at", DateTime(timezone=True), nullable=False),
)
