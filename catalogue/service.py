"""The :class:`Catalogue` service: one object the routers find on ``request.app.state.catalogue``.

It owns the lifecycle (``open``/``close``, or ``async with``), keeps the live datasets in step with the hub's
:class:`~catalogue.source.EntitySource`, and implements the dataset, organisation and group operations that the
CKAN actions and the web pages share.

    >>> import asyncio
    >>> from gateway.db import make_engine
    >>> from catalogue.source import MemorySource
    >>> from schemas.registry import SchemaRegistry
    >>> async def demo():
    ...     async with Catalogue(make_engine("sqlite:///:memory:"), MemorySource(), SchemaRegistry.load(),
    ...                          create_tables=True) as catalogue:
    ...         return (await catalogue.package_search({"q": "*:*"}))["count"]
    >>> asyncio.run(demo())
    0
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue.errors import NotAuthorized, NotFound, ValidationFailed
from catalogue.frozen import PeriodFreezer
from catalogue.i18n import DEFAULT_LOCALE, THEMES, city_name
from catalogue.live import LiveDescriber, LiveRows
from catalogue.packages import finish, group_dict, normalise, now
from catalogue.search import parse_params, search
from catalogue.source import EntitySource
from catalogue.store import Store
from catalogue.tables import ensure_full_text
from gateway.migrate import upgrade
from schemas.registry import SchemaRegistry

JsonObject = dict[str, Any]
ModuleProvider = Callable[[], Sequence[JsonObject]]
log = logging.getLogger("qala.catalogue")


@dataclass(frozen=True)
class CatalogueSettings:
    """What a hub configures about its catalogue."""

    site_url: str = "http://127.0.0.1:8000"
    title: str = "Qala open data"
    description: str = "Open data of Kazakh smart cities, live from the Qala interoperability hub."
    publisher: str = "Qala hub"
    default_locale: str = DEFAULT_LOCALE
    refresh_seconds: float = 30.0
    """How often live datasets are re-described from the store's summaries (0: only on ``refresh()``)."""
    poll_seconds: float = 1.0
    """How often the source's ``version()`` (when it has one) is asked whether data arrived: live datasets are
    re-described as soon as it moves, instead of waiting for ``refresh_seconds``."""
    refresh_share: float = 0.02
    """The largest share of the time spent re-describing live datasets: after a refresh that took *d* seconds the
    next waits at least *d* / ``refresh_share`` (a store's summaries read every entity, so on a large store under
    steady writes a refresh every ``poll_seconds`` would take most of a core; 0.02: at most ~2 %)."""
    search_cache_size: int = 1024
    """``package_search`` results kept per process, valid until the next write anywhere (0: no cache)."""


def _no_modules() -> Sequence[JsonObject]:
    return []


class Catalogue:
    """The open-data catalogue of one hub."""

    def __init__(
        self,
        engine: AsyncEngine,
        source: EntitySource,
        registry: SchemaRegistry,
        settings: CatalogueSettings | None = None,
        *,
        modules: ModuleProvider = _no_modules,
        create_tables: bool = False,
    ) -> None:
        self.engine = engine
        self.source = source
        self.registry = registry
        self.settings = settings or CatalogueSettings()
        self.modules = modules
        self.store = Store(engine)
        self.describer = LiveDescriber(registry, self.settings.site_url.rstrip("/"))
        self._create_tables = create_tables
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._searches: OrderedDict[tuple[int, bytes], JsonObject] = OrderedDict()

    # lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Prepare the tables, describe the live datasets, then keep them fresh in the background."""
        await self.prepare()
        seen = await self._source_version()  # before describing: a write during refresh() is seen as new
        await self.refresh()
        if self.settings.refresh_seconds > 0:
            self._task = asyncio.create_task(self._refresh_forever(seen))

    async def prepare(self) -> None:
        """Create the tables (when asked) and the theme groups; enough for the CLI, which has no live source."""
        if self._create_tables:
            # The hub's migrations, not create_all: a database first opened here must still start a hub.
            await upgrade(self.engine)
        async with self.engine.begin() as connection:
            await connection.run_sync(ensure_full_text)
            existing = await self.store.groups(connection, "group")
            for name, titles in THEMES.items():
                if name not in existing:
                    await self.store.save_group(
                        connection,
                        group_dict(
                            {"name": name, "title_translated": titles},
                            is_organization=False,
                            default_locale=self.settings.default_locale,
                        ),
                    )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Catalogue:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def _source_version(self) -> int | None:
        version = getattr(self.source, "version", None)  # optional: a source without it is refreshed on the timer
        return int(await version()) if version is not None else None

    async def _refresh_forever(self, seen: int | None) -> None:
        step = min(self.settings.poll_seconds, self.settings.refresh_seconds)
        waited = 0.0
        pause = 0.0  # the rest of the wait the last refresh's cost imposes (refresh_share)
        while True:
            await asyncio.sleep(max(step, pause))
            waited += max(step, pause)
            pause = 0.0
            try:
                now = await self._source_version()
                if now != seen or waited >= self.settings.refresh_seconds:
                    seen, waited = now, 0.0
                    began = time.perf_counter()
                    try:
                        await self.refresh()
                    finally:
                        # Wall time, not CPU: under load it overstates the cost, so refreshes only grow rarer.
                        spent = time.perf_counter() - began
                        if self.settings.refresh_share > 0:
                            pause = spent / self.settings.refresh_share - spent
            except Exception:  # the next round retries; a failing store must not stop the loop
                log.exception("refreshing live datasets failed")

    async def refresh(self) -> int:
        """Re-describe every live dataset from the store; returns how many datasets changed."""
        summaries = await self.source.summaries()
        changed = 0
        async with self._lock, self.engine.begin() as connection:
            orgs = await self.store.groups(connection, "organization")
            groups = await self.store.groups(connection, "group")
            stored = await self.store.live_docs(connection)
            seen = set()
            for summary in summaries:
                doc = self.describer.describe(summary)
                if doc is None:
                    continue
                seen.add(doc["name"])
                city = summary.city
                if city not in orgs:
                    orgs[city] = group_dict(
                        {"name": city, "title_translated": city_name(city)},
                        is_organization=True,
                        default_locale=self.settings.default_locale,
                    )
                    orgs[city]["city"] = city
                    await self.store.save_group(connection, orgs[city])
                doc = normalise(doc, self.settings.default_locale) | {"id": doc["id"]}
                previous = stored.get(doc["name"])
                created = previous and previous.get("metadata_created")
                modified = summary.last_received or now()
                full = finish(
                    doc,
                    organization=orgs[city],
                    groups=groups,
                    created=_parse(created) if created else modified,
                    modified=modified,
                )
                if full != previous:
                    await self.store.save_dataset(
                        connection, full, live=True, created=_parse(full["metadata_created"]), modified=modified
                    )
                    changed += 1
            for name, doc in stored.items():
                if name not in seen:
                    await self.store.delete_dataset(connection, doc["id"])
                    changed += 1
        return changed

    # reads ------------------------------------------------------------------------------------------------

    async def package_show(self, key: str) -> JsonObject:
        doc = await self.store.get_dataset(key)
        if doc is None:
            raise NotFound("Dataset not found")
        return doc

    async def package_search(self, data: JsonObject) -> JsonObject:
        """CKAN's ``package_search``; results are cached until the catalogue's generation changes."""
        params = parse_params(data)
        size = self.settings.search_cache_size
        async with self.engine.connect() as connection:
            key = (await self.store.generation(connection), repr(params).encode())
            cached = self._searches.get(key) if size else None
            if cached is not None:
                self._searches.move_to_end(key)
                return cached
            count, docs, facets = await search(connection, params)
        search_facets = {
            name: {"title": name, "items": [{"name": v, "display_name": v, "count": n} for v, n in values.items()]}
            for name, values in facets.items()
        }
        result = {
            "count": count,
            "results": docs,
            "facets": facets,
            "search_facets": search_facets,
            "sort": params.sort_text,
        }
        if size:
            if self._searches and next(reversed(self._searches))[0] != key[0]:
                self._searches.clear()  # written since: every entry is stale
            self._searches[key] = result
            while len(self._searches) > size:
                self._searches.popitem(last=False)
        return result

    async def package_list(self, limit: int | None = None, offset: int = 0) -> list[str]:
        return await self.store.names(limit, offset)

    async def group_list(self, kind: str, all_fields: bool = False) -> list[Any]:
        async with self.engine.connect() as connection:
            docs = await self.store.groups(connection, kind)
        if not all_fields:
            return list(docs)
        counts = await self.store.facet_counts("organization" if kind == "organization" else "groups")
        return [doc | {"package_count": counts.get(name, 0)} for name, doc in docs.items()]

    async def group_show(self, kind: str, key: str, include_datasets: bool = False) -> JsonObject:
        doc = await self.store.find_group(kind, key)
        if doc is None:
            raise NotFound(f"{'Organization' if kind == 'organization' else 'Group'} not found")
        field = "organization" if kind == "organization" else "groups"
        found = await self.package_search({"fq": f'{field}:"{doc["name"]}"', "rows": 10 if include_datasets else 0})
        doc["package_count"] = found["count"]
        if include_datasets:
            doc["packages"] = found["results"]
        return doc

    async def tag_list(self) -> list[str]:
        return sorted(await self.store.facet_counts("tags"))

    async def resource_show(self, resource_id: str) -> JsonObject:
        doc = await self.store.dataset_of_resource(resource_id)
        resource = next((r for r in (doc or {}).get("resources", []) if r["id"] == resource_id), None)
        if resource is None:
            raise NotFound("Resource was not found.")
        return dict(resource)

    def live_rows(self, doc: JsonObject) -> LiveRows:
        """The row stream behind a live dataset's downloads and ``datastore_search``."""
        if not doc.get("live"):
            raise NotFound(f"Dataset {doc['name']} is not live")
        version, freezer = self.registry.get(doc["collection"]), PeriodFreezer(self.engine)
        return LiveRows(version, self.source, doc["collection"], doc["city"], freezer)

    # writes -----------------------------------------------------------------------------------------------

    async def save_package(self, data: JsonObject, *, actor: str | None, create: bool) -> JsonObject:
        """Create (``create=True``) or replace a static dataset; live ones belong to the hub."""
        if actor is None:
            raise NotAuthorized("Access denied: an API token is required to change datasets")
        doc = normalise(data, self.settings.default_locale)
        key = str(data.get("id") or doc["name"]) if not create else doc["name"]
        async with self._lock, self.engine.begin() as connection:
            existing = await self.store.find_dataset(connection, key)
            if create and existing is not None:
                raise ValidationFailed({"name": ["That URL is already in use."]})
            if not create and existing is None:
                raise NotFound("Dataset not found")
            if existing and existing.get("live"):
                raise NotAuthorized(f"Dataset {existing['name']} is live: the hub generates it")
            if existing and existing["name"] != doc["name"]:
                clash = await self.store.find_dataset(connection, doc["name"])
                if clash is not None:
                    raise ValidationFailed({"name": ["That URL is already in use."]})
            if existing and "resources" not in data:
                doc["resources"] = existing.get("resources", [])
            organization = await self._owner(connection, doc.get("owner_org"))
            groups = await self.store.groups(connection, "group")
            unknown = [g["name"] for g in doc["groups"] if g["name"] not in groups]
            if unknown:
                raise ValidationFailed({"groups": [f"Group not found: {', '.join(unknown)}"]})
            doc["id"] = existing["id"] if existing else (data.get("id") or _uuid())
            created = _parse(existing["metadata_created"]) if existing else now()
            modified = now()
            full = finish(doc, organization=organization, groups=groups, created=created, modified=modified)
            full["creator_user_id"] = existing.get("creator_user_id") if existing else actor
            await self.store.save_dataset(connection, full, live=False, created=created, modified=modified, actor=actor)
            return full

    async def _owner(self, connection: Any, key: Any) -> JsonObject | None:
        if not key:
            return None
        orgs = await self.store.groups(connection, "organization")
        match = next((o for o in orgs.values() if key in (o["id"], o["name"])), None)
        if match is None:
            raise ValidationFailed({"owner_org": ["Organization does not exist"]})
        return match

    async def package_patch(self, data: JsonObject, *, actor: str | None) -> JsonObject:
        key = data.get("id") or data.get("name")
        if not isinstance(key, str):
            raise ValidationFailed({"id": ["Missing value"]})
        existing = await self.package_show(key)
        return await self.save_package(existing | data, actor=actor, create=False)

    async def package_delete(self, key: str, *, actor: str | None) -> None:
        if actor is None:
            raise NotAuthorized("Access denied: an API token is required to delete datasets")
        async with self._lock, self.engine.begin() as connection:
            existing = await self.store.find_dataset(connection, key)
            if existing is None:
                raise NotFound("Dataset not found")
            if existing.get("live"):
                raise NotAuthorized(f"Dataset {existing['name']} is live: the hub generates it")
            await self.store.delete_dataset(connection, existing["id"], actor)

    async def resource_create(
        self, data: JsonObject, upload: tuple[str, str, bytes] | None, *, actor: str | None
    ) -> JsonObject:
        """Add a linked resource, or an uploaded file (``(filename, mimetype, content)``) served by the hub."""
        package_id = data.get("package_id")
        if not isinstance(package_id, str):
            raise ValidationFailed({"package_id": ["Missing value"]})
        if upload is None and not data.get("url"):
            raise ValidationFailed({"url": ["Missing value: give a url or upload a file"]})
        package = await self.package_show(package_id)
        resource = {k: v for k, v in data.items() if k not in ("package_id", "upload")}
        resource["id"] = _uuid()
        if upload is not None:
            filename = upload[0].rsplit("/", 1)[-1] or "file"
            resource.update(
                url=f"{self.settings.site_url.rstrip('/')}/dataset/{package['id']}/resource/"
                f"{resource['id']}/download/{filename}",
                url_type="upload",
                size=len(upload[2]),
                mimetype=upload[1],
            )
            resource.setdefault("name", filename)
        saved = await self.save_package(
            package | {"resources": [*package["resources"], resource]}, actor=actor, create=False
        )
        if upload is not None:
            async with self.engine.begin() as connection:
                await self.store.save_upload(
                    connection, resource["id"], resource["url"].rsplit("/", 1)[-1], upload[1], upload[2]
                )
        return next(r for r in saved["resources"] if r["id"] == resource["id"])

    async def group_create(self, data: JsonObject, *, is_organization: bool, actor: str | None) -> JsonObject:
        if actor is None:
            raise NotAuthorized("Access denied: an API token is required")
        doc = group_dict(data, is_organization=is_organization, default_locale=self.settings.default_locale)
        kind = "organization" if is_organization else "group"
        if await self.store.find_group(kind, doc["name"]) is not None:
            raise ValidationFailed({"name": ["Group name already exists in database"]})
        async with self.engine.begin() as connection:
            await self.store.save_group(connection, doc)
        return doc


def _parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuid() -> str:
    return str(uuid.uuid4())
