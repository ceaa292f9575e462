"""Harvest from, and push to, any CKAN-compatible catalogue through ckanapi.

Harvested datasets keep their name and metadata; their resources stay links to the remote files, and extras
``harvest_source`` / ``harvest_remote_id`` say where they came from. A local dataset of the same name that was
not harvested from that source is left alone and reported as skipped. Pushing sends every dataset (live ones
as links to this hub's downloads and API), creating missing organisations and groups first.

    >>> remote_resource({"id": "r1", "url": "https://x/a.csv", "format": "CSV", "name": "a"}, "https://x")["url"]
    'https://x/a.csv'
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ckanapi

from catalogue.errors import HarvestError, ValidationFailed
from catalogue.i18n import LOCALES
from catalogue.links import check_link
from catalogue.packages import LICENSES, SERVER_KEYS, group_dict
from catalogue.service import Catalogue

JsonObject = dict[str, Any]
USER_AGENT = "qala-catalogue/0.1 (+https://github.com/qala)"
Progress = Callable[[str], None]


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed"
        )


async def _call(remote: ckanapi.RemoteCKAN, action: str, **data: Any) -> Any:
    """One remote action in a worker thread, its failures translated to :class:`HarvestError`."""
    try:
        return await asyncio.to_thread(remote.call_action, action, data)
    except ckanapi.NotFound:
        raise
    except (ckanapi.CKANAPIError, ckanapi.ValidationError, ckanapi.NotAuthorized, OSError) as exc:
        raise HarvestError(f"{action} on {remote.address} failed: {exc}") from exc
    except Exception as exc:  # requests' and urllib3's many exception types all mean "remote unusable"
        raise HarvestError(f"{action} on {remote.address} failed: {type(exc).__name__}: {exc}") from exc


def _web_link(url: Any) -> str:
    """A remote resource's link if it is a web link; a harvested ``javascript:`` link is dropped, not copied."""
    try:
        return str(check_link(url, "url") or "")
    except ValidationFailed:
        return ""


def remote_resource(resource: JsonObject, source: str) -> JsonObject:
    """A harvested resource: a link to the remote file, with an id stable per (source, remote id)."""
    kept = {key: resource.get(key) for key in ("name", "description", "format", "mimetype", "size")}
    return {
        **kept,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}#{resource.get('id')}")),
        "url": _web_link(resource.get("url")),
        "url_type": None,
    }


def _translated(remote: JsonObject, key: str, plain: str) -> dict[str, str]:
    value = remote.get(key)
    if isinstance(value, dict):
        return {loc: str(text) for loc, text in value.items() if loc in LOCALES and text}
    return {loc: str(remote[plain]) for loc in LOCALES} if remote.get(plain) else {}


async def _ensure_group(catalogue: Catalogue, remote_group: JsonObject, *, is_organization: bool) -> str:
    kind = "organization" if is_organization else "group"
    name = str(remote_group.get("name"))
    if await catalogue.store.find_group(kind, name) is None:
        doc = group_dict(
            {
                "name": name,
                "title_translated": _translated(remote_group, "title_translated", "title"),
                "description": remote_group.get("description") or "",
            },
            is_organization=is_organization,
        )
        async with catalogue.engine.begin() as connection:
            await catalogue.store.save_group(connection, doc)
    return name


async def harvest(catalogue: Catalogue, url: str, progress: Progress = lambda _: None) -> Report:
    """Import every dataset of the CKAN-compatible catalogue at ``url``."""
    source = url.rstrip("/")
    remote = ckanapi.RemoteCKAN(source, user_agent=USER_AGENT)
    report = Report()
    for name in await _call(remote, "package_list"):
        try:
            package = await _call(remote, "package_show", id=name)
        except ckanapi.NotFound:
            report.failed[name] = "vanished during the harvest"
            continue
        local = await catalogue.store.get_dataset(name)
        extras = {e["key"]: e["value"] for e in (local or {}).get("extras", [])}
        if local is not None and extras.get("harvest_source") != source:
            report.skipped.append(name)
            continue
        organization = package.get("organization")
        groups = [await _ensure_group(catalogue, g, is_organization=False) for g in package.get("groups", [])]
        license_id = package.get("license_id") if package.get("license_id") in LICENSES else "notspecified"
        remote_extras = [e for e in package.get("extras", []) if not str(e.get("key")).startswith("harvest_")]
        doc = {
            "name": name,
            "title_translated": _translated(package, "title_translated", "title") or {"en": name},
            "notes_translated": _translated(package, "notes_translated", "notes"),
            "tags": [t["name"] for t in package.get("tags", [])],
            "groups": groups,
            "license_id": license_id,
            "owner_org": await _ensure_group(catalogue, organization, is_organization=True) if organization else None,
            "url": package.get("url") or f"{source}/dataset/{name}",
            "city": package.get("city"),
            "frequency": package.get("frequency"),
            "spatial": package.get("spatial"),
            "extras": [
                *remote_extras,
                {"key": "harvest_source", "value": source},
                {"key": "harvest_remote_id", "value": package["id"]},
            ],
            "resources": [remote_resource(r, source) for r in package.get("resources", [])],
        }
        await catalogue.save_package(
            doc | ({"id": local["id"]} if local else {}), actor=f"harvest:{source}", create=local is None
        )
        (report.updated if local else report.created).append(name)
        progress(name)
    return report


def _outgoing(doc: JsonObject) -> JsonObject:
    package = {key: value for key, value in doc.items() if key not in SERVER_KEYS and key != "id"}
    package["owner_org"] = (doc.get("organization") or {}).get("name")
    package["groups"] = [{"name": g["name"]} for g in doc.get("groups", [])]
    package["tags"] = [{"name": t["name"]} for t in doc.get("tags", [])]
    package["resources"] = [
        {key: r.get(key) for key in ("name", "description", "format", "mimetype", "url") if r.get(key) is not None}
        for r in doc.get("resources", [])
    ]
    return package


async def push(catalogue: Catalogue, url: str, token: str, progress: Progress = lambda _: None) -> Report:
    """Publish every local dataset to the CKAN-compatible catalogue at ``url`` with the API ``token``."""
    remote = ckanapi.RemoteCKAN(url.rstrip("/"), apikey=token, user_agent=USER_AGENT)
    report = Report()
    known: set[tuple[str, str]] = set()
    for name in await catalogue.package_list():
        doc = await catalogue.package_show(name)
        wanted = [("organization", doc["organization"])] if doc.get("organization") else []
        wanted += [("group", g) for g in doc.get("groups", [])]
        for kind, group in wanted:
            if (kind, group["name"]) in known:
                continue
            try:
                await _call(remote, f"{kind}_show", id=group["name"])
            except ckanapi.NotFound:
                await _call(
                    remote,
                    f"{kind}_create",
                    name=group["name"],
                    title=group.get("title") or group["name"],
                    description=group.get("description") or "",
                )
            known.add((kind, group["name"]))
        package = _outgoing(doc)
        try:
            existing = await _call(remote, "package_show", id=name)
        except ckanapi.NotFound:
            existing = None
        try:
            if existing is None:
                await _call(remote, "package_create", **package)
                report.created.append(name)
            else:
                await _call(remote, "package_update", id=existing["id"], **package)
                report.updated.append(name)
        except HarvestError as exc:
            report.failed[name] = str(exc)
        progress(name)
    return report
