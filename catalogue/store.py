"""The catalogue's own records in the hub's database: datasets, organisations and groups, uploads, API tokens.

Each dataset row keeps the full ``package_show`` dictionary, so reads are one lookup; writes also refresh its
facet rows and its full-text entry.

    >>> search_title({"name": "air", "title_translated": {"kk": "Ауа"}, "tags": [{"name": "pm25"}]})
    'air Ауа pm25'
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalogue.packages import now
from catalogue.tables import api_tokens, datasets, facets, organizations, resources, uploads

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

    # datasets ---------------------------------------------------------------------------------------------

    async def find_dataset(self, connection: AsyncConnection, key: str) -> JsonObject | None:
        row = (
            await connection.execute(
                select(datasets.c.doc).where(
                    (datasets.c.name == key) | (datasets.c.id == key), datasets.c.state == "active"
                )
            )
        ).first()
        return dict(row.doc) if row else None

    async def get_dataset(self, key: str) -> JsonObject | None:
        async with self.engine.connect() as connection:
            return await self.find_dataset(connection, key)

    async def save_dataset(
        self, connection: AsyncConnection, doc: JsonObject, *, live: bool, created: datetime, modified: datetime
    ) -> None:
        """Insert or replace one dataset with its facet, resource and full-text rows."""
        dataset_id = doc["id"]
        await self._forget(connection, dataset_id)
        await connection.execute(
            insert(datasets).values(
                id=dataset_id,
                name=doc["name"],
                title=doc.get("title") or doc["name"],
                live=live,
                owner_org=(doc.get("organization") or {}).get("name"),
                state="active",
                metadata_created=created,
                metadata_modified=modified,
                title_text=search_title(doc),
                search_text=search_body(doc),
                doc=doc,
            )
        )
        pairs = facet_values(doc)
        if pairs:
            await connection.execute(
                insert(facets), [{"dataset_id": dataset_id, "field": f, "value": v} for f, v in pairs]
            )
        if doc.get("resources"):
            await connection.execute(
                insert(resources),
                [{"id": r["id"], "dataset_id": dataset_id, "position": i} for i, r in enumerate(doc["resources"])],
            )
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql(
                "INSERT INTO catalogue_fts (dataset_id, title, body) VALUES (?, ?, ?)",
                (dataset_id, search_title(doc), search_body(doc)),
            )

    async def _forget(self, connection: AsyncConnection, dataset_id: str) -> None:
        await connection.execute(delete(facets).where(facets.c.dataset_id == dataset_id))
        await connection.execute(delete(resources).where(resources.c.dataset_id == dataset_id))
        await connection.execute(delete(datasets).where(datasets.c.id == dataset_id))
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql("DELETE FROM catalogue_fts WHERE dataset_id = ?", (dataset_id,))

    async def delete_dataset(self, connection: AsyncConnection, dataset_id: str) -> None:
        await self._forget(connection, dataset_id)

    async def dataset_times(self, connection: AsyncConnection, dataset_id: str) -> datetime | None:
        return (
            await connection.execute(select(datasets.c.metadata_created).where(datasets.c.id == dataset_id))
        ).scalar_one_or_none()

    async def live_docs(self, connection: AsyncConnection) -> dict[str, JsonObject]:
        rows = await connection.execute(select(datasets.c.name, datasets.c.doc).where(datasets.c.live.is_(True)))
        return {row.name: row.doc for row in rows}

    async def names(self, limit: int | None, offset: int) -> list[str]:
        query = select(datasets.c.name).where(datasets.c.state == "active").order_by(datasets.c.name)
        query = query.offset(offset) if limit is None else query.limit(limit).offset(offset)
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    async def dataset_of_resource(self, resource_id: str) -> JsonObject | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(datasets.c.doc)
                    .join(resources, resources.c.dataset_id == datasets.c.id)
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
