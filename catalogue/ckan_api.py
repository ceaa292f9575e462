"""CKAN Action API: ``/api/3/action/<name>`` and ``/api/action/<name>``, GET and POST (JSON, form, multipart).

Every action is a row of :data:`ACTIONS`; the catalogue's exceptions become CKAN's envelope in :func:`_failure`,
the one place that knows the mapping. Unknown actions and unreadable bodies get CKAN's bare-string 400.

    >>> sorted(name for name, action in ACTIONS.items() if not action.side_effect_free)[:3]
    ['group_create', 'organization_create', 'package_create']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry import trace
from starlette.datastructures import UploadFile

from catalogue import actions
from catalogue.cors import OpenReadRoute, preflight
from catalogue.datastore import datastore_info, datastore_search
from catalogue.errors import BadRequest, CatalogueError, NotAuthorized, ValidationFailed
from catalogue.search import MAX_INT
from catalogue.service import Catalogue
from gateway.inputs import json_issue

JsonObject = dict[str, Any]
UPLOAD_MAX = 50 * 2**20


@dataclass(frozen=True)
class Call:
    catalogue: Catalogue
    data: JsonObject
    actor: str | None
    upload: tuple[str, str, bytes] | None
    action_url: str


@dataclass(frozen=True)
class Action:
    run: Callable[[Call], Awaitable[Any]]
    side_effect_free: bool = True


def _flag(data: JsonObject, key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    return value in (True, "true", "True", "1", 1, "yes")


def _required(data: JsonObject, key: str = "id") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed({key: ["Missing value"]})
    return value


def _paging(data: JsonObject) -> tuple[int | None, int]:
    try:
        limit = int(data["limit"]) if data.get("limit") not in (None, "") else None
        offset = int(data.get("offset") or 0)
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed({"limit": ["Invalid integer"]}) from None
    if (limit is not None and not 0 <= limit <= MAX_INT) or not 0 <= offset <= MAX_INT:
        raise ValidationFailed({"limit": [f"Must be a natural number up to {MAX_INT}"]})
    return limit, offset


async def _status(call: Call) -> JsonObject:
    return actions.status(call.catalogue, list(ACTIONS))


async def _site_read(call: Call) -> bool:
    return True


async def _package_list(call: Call) -> list[str]:
    limit, offset = _paging(call.data)
    return await call.catalogue.package_list(limit, offset)


async def _group_list(call: Call, kind: str) -> list[Any]:
    limit, offset = _paging(call.data)
    items = await call.catalogue.group_list(kind, _flag(call.data, "all_fields"))
    return items[offset:] if limit is None else items[offset : offset + limit]


async def _help(call: Call) -> str:
    name = _required(call.data, "name")
    action = ACTIONS.get(name)
    if action is None:
        raise ValidationFailed({"name": [f"Action name not known: {name}"]})
    return actions.help_text(name, action.run)


async def _package_delete(call: Call) -> None:
    await call.catalogue.package_delete(_required(call.data), actor=call.actor)


async def _no_views(call: Call) -> list[Any]:
    await call.catalogue.resource_show(_required(call.data))
    return []


ACTIONS: dict[str, Action] = {
    "status_show": Action(_status),
    "site_read": Action(_site_read),
    "help_show": Action(_help),
    "package_list": Action(_package_list),
    "package_search": Action(lambda c: c.catalogue.package_search(c.data)),
    "package_show": Action(lambda c: c.catalogue.package_show(_required(c.data))),
    "organization_list": Action(lambda c: _group_list(c, "organization")),
    "organization_show": Action(
        lambda c: c.catalogue.group_show("organization", _required(c.data), _flag(c.data, "include_datasets"))
    ),
    "group_list": Action(lambda c: _group_list(c, "group")),
    "group_show": Action(
        lambda c: c.catalogue.group_show("group", _required(c.data), _flag(c.data, "include_datasets"))
    ),
    "tag_list": Action(lambda c: actions.tag_list(c.catalogue, c.data)),
    "license_list": Action(lambda c: actions.license_list(c.catalogue, c.data)),
    "package_autocomplete": Action(lambda c: actions.package_autocomplete(c.catalogue, c.data)),
    "resource_search": Action(lambda c: actions.resource_search(c.catalogue, c.data)),
    "package_activity_list": Action(lambda c: actions.package_activity_list(c.catalogue, c.data)),
    "recently_changed_packages_activity_list": Action(
        lambda c: actions.recently_changed_packages_activity_list(c.catalogue, c.data)
    ),
    "datastore_info": Action(lambda c: datastore_info(c.catalogue, c.data)),
    "resource_show": Action(lambda c: c.catalogue.resource_show(_required(c.data))),
    "resource_view_list": Action(_no_views),
    "datastore_search": Action(lambda c: datastore_search(c.catalogue, c.data, c.action_url)),
    "package_create": Action(lambda c: c.catalogue.save_package(c.data, actor=c.actor, create=True), False),
    "package_update": Action(lambda c: c.catalogue.save_package(c.data, actor=c.actor, create=False), False),
    "package_patch": Action(lambda c: c.catalogue.package_patch(c.data, actor=c.actor), False),
    "package_delete": Action(_package_delete, False),
    "resource_create": Action(lambda c: c.catalogue.resource_create(c.data, c.upload, actor=c.actor), False),
    "organization_create": Action(
        lambda c: c.catalogue.group_create(c.data, is_organization=True, actor=c.actor), False
    ),
    "group_create": Action(lambda c: c.catalogue.group_create(c.data, is_organization=False, actor=c.actor), False),
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json;charset=utf-8")


def _failure(error: CatalogueError, help_url: str) -> Response:
    if isinstance(error, BadRequest):
        return _json(f"Bad request: {error.message}", 400)
    detail: JsonObject = {"__type": error.ckan_type, "message": error.message}
    if isinstance(error, ValidationFailed):
        detail = {**error.fields, "__type": error.ckan_type, "message": error.message}
    return _json({"help": help_url, "success": False, "error": detail}, error.status)


async def _read(request: Request) -> tuple[JsonObject, tuple[str, str, bytes] | None]:
    if request.method == "GET":
        data: JsonObject = {}
        for key, value in request.query_params.multi_items():
            data[key] = (
                [*data[key], value]
                if isinstance(data.get(key), list)
                else ([data[key], value] if key in data else value)
            )
        return data, None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        data, upload = {}, None
        async with request.form() as form:
            for key, item in form.multi_items():
                if not isinstance(item, UploadFile):
                    if "\x00" in key or "\x00" in str(item):  # multipart is not buffered by the input guard
                        raise BadRequest(f"U+0000 (NUL) is not allowed in form field {key.strip(chr(0))!r}")
                    data[key] = str(item)
                    continue
                content = await item.read(UPLOAD_MAX + 1)
                if len(content) > UPLOAD_MAX:
                    raise ValidationFailed({key: [f"File larger than {UPLOAD_MAX // 2**20} MiB"]})
                upload = (item.filename or "file", item.content_type or "application/octet-stream", content)
        return data, upload
    body = await request.body()
    if not body.strip():
        return {}, None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"JSON Error: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("JSON Error: Request data JSON decoded to a non-dictionary")
    issue = json_issue(parsed)  # a body sent as text/plain is read as JSON too, past the input guard
    if issue is not None:
        raise BadRequest(f"JSON Error: {issue}")
    return parsed, None


async def _actor(request: Request, catalogue: Catalogue) -> str | None:
    token = request.headers.get("authorization") or request.headers.get("x-ckan-api-key")
    if not token:
        return None
    name = await catalogue.store.token_name(token.strip())
    if name is None:
        raise NotAuthorized("Access denied: the API token is not valid")
    return name


def router() -> APIRouter:
    """The Action API router; it reads the service from ``request.app.state.catalogue``."""
    api = APIRouter(tags=["CKAN Action API"], route_class=OpenReadRoute)

    async def action(request: Request, name: str) -> Response:
        catalogue: Catalogue = request.app.state.catalogue
        site = catalogue.settings.site_url.rstrip("/")
        help_url = f"{site}/api/3/action/help_show?name={name}"
        entry = ACTIONS.get(name)
        if entry is not None:  # each known action is an operation of its own in traces (never an unknown name)
            trace.get_current_span().set_attribute("http.route", f"{request.url.path.rsplit('/', 1)[0]}/{name}")
        try:
            if entry is None:
                raise BadRequest(f"Action name not known: {name}")
            if request.method == "GET" and not entry.side_effect_free:
                raise BadRequest(f"Action function {name} is not side-effect-free: Please use POST")
            data, upload = await _read(request)
            data.pop("callback", None)
            actor = await _actor(request, catalogue)
            result = await entry.run(Call(catalogue, data, actor, upload, f"{site}/api/3/action/{name}"))
        except CatalogueError as error:
            return _failure(error, help_url)
        return _json({"help": help_url, "success": True, "result": result})

    for prefix in ("/api/3/action", "/api/action"):
        api.add_api_route(
            prefix + "/{name}",
            action,
            methods=["GET", "POST"],
            include_in_schema=False,
            name="catalogue_action" if prefix == "/api/3/action" else "catalogue_action_legacy",
        )
        api.add_api_route(prefix + "/{name}", preflight, methods=["OPTIONS"], include_in_schema=False)
    return api
