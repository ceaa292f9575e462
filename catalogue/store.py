"""The catalogue's own records in the hub's database: datasets, organisations and groups, uploads, API tokens.

Each dataset row keeps the full ``package_show`` dictionary, so reads are one lookup; writes also refresh its
facet rows and its full-text entry.

    >>> search_title({"name": "air", "title_translated": {"kk": "Ауа"}, "tags": [{"name": "pm25"}]})
    'air Ауа pm25'
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalogue.packages import now
from catalogue.tables import (
    activities,
    api_tokens,
    datasets,
    documents,
    facets,
    generation,
    organizations,
    resources,
    uploads,
)

JsonObject = dict[str, Any]


def search_title(doc: JsonObject) -> str:
    """The heavier-weighted text: name, titles in every language, tags and themes."""
    parts = [doc.get("name", ""), doc.get("title") or "", *(doc.get("title_translated") or {}).values()]
    parts += [t["name"] for t in doc.get("tags", [])] + [g["name"] for g in doc.get("groups", [])]
    return " ".join(dict.fromkeys(p for p in parts if p))


def search_body(doc: JsonObject) -> str:
    """The rest: descriptions in every language, the collection and the organisation."""
    parts = [doc.get("notes") or "", *(doc.get("notes_translated") or {}).values(), doc.get("collection") or ""]
    organization = doc.get("organization") or {}
    parts += [organization.get("name", ""), organization.get("title", "")]
    return " ".join(dict.fromkeys(p for p in parts if p))


def facet_values(doc: JsonObject) -> list[tuple[str, str]]:
    organization = doc.get("organization") or {}
    pairs = [("organization", organization.get("name", "")), ("license_id", doc.get("license_id") or "")]
    pairs.append(("city", doc.get("city") or organization.get("city") or ""))
    pairs += [("groups", g["name"]) for g in doc.get("groups", [])]
    pairs += [("tags", t["name"]) for t in doc.get("tags", [])]
    pairs += [("res_format", r["format"]) for r in doc.get("resources", []) if r.get("format")]
    return [(f, v[:200]) for f, v in dict.fromkeys(pairs) if v]


class Store:
    """Async access to the catalogue tables on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # generation -------------------------------------------------------------------------------------------

    async def generation(self, connection: AsyncConnection) -> int:
        """The catalogue's write counter (0 before the first write)."""
        value = (await connection.execute(select(generation.c.value).where(generation.c.id == 1))).scalar()
        return int(value or 0)

    async def bump(self, connection: AsyncConnection) -> None:
        updated = await connection.execute(
            update(generation).where(generation.c.id == 1).values(value=generation.c.value + 1)
        )
        if not updated.rowcount:
            await connection.execute(insert(generation).values(id=1, value=1))

    # datasets ---------------------------------------------------------------------------------------------

    async def find_dataset(self, connection: AsyncConnection, key: str) -> JsonObject | None:
        row = (
            await connection.execute(
                select(documents.c.doc)
                .join(datasets, datasets.c.key == documents.c.dataset_key)
                .where((datasets.c.name == key) | (datasets.c.id == key))
            )
        ).first()
        return dict(row.doc) if row else None

    async def get_dataset(self, key: str) -> JsonObject | None:
        async with self.engine.connect() as connection:
            return await self.find_dataset(connection, key)

    async def save_dataset(
        self,
        connection: AsyncConnection,
        doc: JsonObject,
        *,
        live: bool,
        created: datetime,
        modified: datetime,
        actor: str | None = None,
    ) -> None:
        """Insert or replace one dataset with its document, facet, resource and full-text rows, and say so in the
        activity stream."""
        existed = await self._forget(connection, doc["id"])
        await self.bump(connection)
        await self.record(connection, doc, "changed package" if existed else "new package", modified, actor)
        key = (
            await connection.execute(
                insert(datasets)
                .values(
                    id=doc["id"],
                    name=doc["name"],
                    title=doc.get("title") or doc["name"],
                    live=live,
                    owner_org=(doc.get("organization") or {}).get("name"),
                    metadata_created=created,
                    metadata_modified=modified,
                )
                .returning(datasets.c.key)
            )
        ).scalar_one()
        title, body = search_title(doc), search_body(doc)
        await connection.execute(insert(documents).values(dataset_key=key, title_text=title, search_text=body, doc=doc))
        pairs = facet_values(doc)
        if pairs:
            await connection.execute(insert(facets), [{"dataset_key": key, "field": f, "value": v} for f, v in pairs])
        if doc.get("resources"):
            await connection.execute(
                insert(resources),
                [{"id": r["id"], "dataset_key": key, "position": i} for i, r in enumerate(doc["resources"])],
            )
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql(
                "INSERT INTO catalogue_fts (rowid, title, body) VALUES (?, ?, ?)", (key, title, body)
            )

    async def _forget(self, connection: AsyncConnection, dataset_id: str) -> bool:
        key = (await connection.execute(select(datasets.c.key).where(datasets.c.id == dataset_id))).scalar_one_or_none()
        if key is None:
            return False
        for table in (facets, resources, documents):
            await connection.execute(delete(table).where(table.c.dataset_key == key))
        await connection.execute(delete(datasets).where(datasets.c.key == key))
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql("DELETE FROM catalogue_fts WHERE rowid = ?", (key,))
        return True

    async def delete_dataset(self, connection: AsyncConnection, dataset_id: str, actor: str | None = None) -> None:
        doc = await self.find_dataset(connection, dataset_id)
        await self._forget(connection, dataset_id)
        await self.bump(connection)
        if doc is not None:
            await self.record(connection, doc | {"state": "deleted"}, "deleted package", now(), actor)

    async def record(
        self, connection: AsyncConnection, doc: JsonObject, kind: str, moment: datetime, actor: str | None
    ) -> None:
        """One activity of CKAN's stream; ``data.package`` is the dataset as it was after the change."""
        await connection.execute(
            insert(activities).values(
                id=str(uuid.uuid4()),
                timestamp=moment,
                object_id=doc["id"],
                activity_type=kind,
                user_id=actor,
                data={"package": doc},
            )
        )

    async def activities(
        self, object_id: str | None, limit: int, offset: int, include_data: bool = True
    ) -> list[JsonObject]:
        """Newest first; one dataset's when ``object_id`` is given, else the whole catalogue's."""
        query = select(activities).order_by(activities.c.timestamp.desc(), activities.c.id).limit(limit).offset(offset)
        if object_id is not None:
            query = query.where(activities.c.object_id == object_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            {
                "id": row.id,
                "timestamp": row.timestamp.replace(tzinfo=None).isoformat()
                if row.timestamp.tzinfo is None
                else row.timestamp.astimezone(UTC).replace(tzinfo=None).isoformat(),
                "user_id": row.user_id,
                "object_id": row.object_id,
                "activity_type": row.activity_type,
                "data": row.data
                if include_data
                else {"package": {"name": row.data["package"]["name"], "title": row.data["package"].get("title")}},
            }
            for row in rows
        ]

    async def live_docs(self, connection: AsyncConnection) -> dict[str, JsonObject]:
        rows = await connection.execute(
            select(datasets.c.name, documents.c.doc)
            .join(documents, documents.c.dataset_key == datasets.c.key)
            .where(datasets.c.live.is_(True))
        )
        return {row.name: row.doc for row in rows}

    async def names(self, limit: int | None, offset: int) -> list[str]:
        query = select(datasets.c.name).order_by(datasets.c.name)
        query = query.offset(offset) if limit is None else query.limit(limit).offset(offset)
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    async def dataset_of_resource(self, resource_id: str) -> JsonObject | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(documents.c.doc)
                    .join(resources, resources.c.dataset_key == documents.c.dataset_key)
                    .where(resources.c.id == resource_id)
                )
            ).first()
            return dict(row.doc) if row else None

    async def facet_counts(self, field: str) -> dict[str, int]:
        query = select(facets.c.value, func.count()).where(facets.c.field == field).group_by(facets.c.value)
        async with self.engine.connect() as connection:
            return {str(value): int(count) for value, count in (await connection.execute(query)).all()}

    # organisations and groups -----------------------------------------------------------------------------

    async def save_group(self, connection: AsyncConnection, doc: JsonObject) -> None:
        kind = "organization" if doc["is_organization"] else "group"
        await self.bump(connection)
        exists = (
            await connection.execute(select(organizations.c.id).where(organizations.c.name == doc["name"]))
        ).first()
        if exists:
            await connection.execute(update(organizations).where(organizations.c.name == doc["name"]).values(doc=doc))
        else:
            await connection.execute(
                insert(organizations).values(id=doc["id"], name=doc["name"], kind=kind, doc=doc, created=now())
            )

    async def groups(self, connection: AsyncConnection, kind: str) -> dict[str, JsonObject]:
        rows = await connection.execute(
            select(organizations.c.doc).where(organizations.c.kind == kind).order_by(organizations.c.name)
        )
        return {row.doc["name"]: dict(row.doc) for row in rows}

    async def find_group(self, kind: str, key: str) -> JsonObject | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(organizations.c.doc).where(
                        organizations.c.kind == kind, (organizations.c.name == key) | (organizations.c.id == key)
                    )
                )
            ).first()
            return dict(row.doc) if row else None

    # uploads ----------------------------------------------------------------------------------------------

    async def save_upload(
        self, connection: AsyncConnection, resource_id: str, filename: str, mimetype: str, content: bytes
    ) -> None:
        await connection.execute(delete(uploads).where(uploads.c.resource_id == resource_id))
        await connection.execute(
            insert(uploads).values(resource_id=resource_id, filename=filename, mimetype=mimetype, content=content)
        )

    async def upload(self, resource_id: str) -> tuple[str, str, bytes] | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(uploads).where(uploads.c.resource_id == resource_id))).first()
            return (row.filename, row.mimetype, row.content) if row else None

    # API tokens -------------------------------------------------------------------------------------------

    async def create_token(self, name: str) -> str:
        """A new token; only its SHA-256 is kept (it is 256 random bits, so a fast hash is enough)."""
        token = "qala_" + secrets.token_urlsafe(32)
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(api_tokens).values(
                    id=secrets.token_hex(8), name=name, token_hash=_digest(token), created=now(), revoked=False
                )
            )
        return token

    async def token_name(self, token: str) -> str | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(api_tokens.c.name).where(
                        api_tokens.c.token_hash == _digest(token), api_tokens.c.revoked.is_(False)
                    )
                )
            ).first()
            return row.name if row else None

    async def tokens(self) -> list[JsonObject]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(api_tokens).order_by(api_tokens.c.created))
            return [{"id": r.id, "name": r.name, "created": r.created.isoformat(), "revoked": r.revoked} for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(revoked=True)
            )
            return bool(result.rowcount)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
