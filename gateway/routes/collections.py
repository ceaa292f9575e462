"""The collections API, generated from the schema registry: a new canonical type needs no route code.

For every collection ``c``: ``GET /api/v1/c`` (filters, keyset pages), ``POST /api/v1/c`` (create),
``GET|PUT|DELETE /api/v1/c/{id}``. The operations are exactly those of the open-API mandate
(``openapi/c.yaml``), which also documents them in the hub's OpenAPI document.
"""

# No ``from __future__ import annotations`` here: the routes' parameter annotations are built per collection
# inside a function, and FastAPI can only see such local types when annotations are evaluated eagerly.
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import Caller, authorize
from gateway.cities import unknown_city_message
from gateway.errors import BadRequest, NotFound
from gateway.exchange import (
    EntityResponse,
    Exchange,
    audit_record,
    exchange_of,
    hidden_fields,
    mark_audited,
    parse_entity,
    public_view,
    public_viewer,
    publisher_of,
    validated,
)
from gateway.links import path_segment, request_link
from gateway.routes.patch import add_patch_route, keep_unseen
from gateway.store.cursor import CursorCodec
from gateway.store.entities import ListQuery
from gateway.store.records import JsonObject, StoredEntity
from openapi.mandate import DEFAULT_LIMIT, MAX_LIMIT
from schemas import SchemaRegistry, SchemaVersion

PREFIX = "/api/v1"
_CITY = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_RESERVED = frozenset({"city", "updatedSince", "bbox", "limit", "cursor"})


class RouteConflict(Exception):
    """Another route lives under a collection's path, where the collection routes would take its requests."""


class CollectionRouter(APIRouter):
    """Routes of collections, which own every path at or under ``/api/v1/<collection>`` and no other path.

    FastAPI looks for a request's route by trying the routes of every router in turn, and the routes of the router
    that has it twice; with the hub's 180 routes that search took a request longer than a bare endpoint's whole
    answer (``bench/http_load.py``). A collection router turns away a path outside its collections with one look at
    the path, before FastAPI tries its routes. :func:`build_routers` makes one per collection, so a request tries the
    routes of its own collection only, and passes each other collection's router by one test.

    Turning a path away is only a shortcut: a path it does not turn away goes through FastAPI's own search.

        router = CollectionRouter(["service-requests"], prefix="/api/v1")
        router.claims("/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:SR-1")   # True
    """

    def __init__(self, collections: Iterable[str], **options: Any) -> None:
        super().__init__(**options)
        self.collections = frozenset(collections)
        self.operations: dict[tuple[str, str, bool], APIRoute] = {}
        """The route of each (method, collection, path names one entity) that :class:`CollectionDispatch` sends
        straight to its endpoint."""

    def claims(self, path: str) -> bool:
        """Whether ``path`` is one of this router's collections or lies under one."""
        if not path.startswith(PREFIX + "/"):
            return False
        return path[len(PREFIX) + 1 :].partition("/")[0] in self.collections

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Under a root path the route path is not scope["path"]; FastAPI's own search then decides alone.
        if not scope.get("root_path") and not self.claims(scope.get("path", "")):
            return Match.NONE, {}
        return super().matches(scope)

    def check_apart(self, routes: Iterable[BaseRoute]) -> None:
        """Raise :class:`RouteConflict` naming the first of ``routes`` that could match a path this router claims.

        The app mounts this router before all others, which changes no answer only while no other route could
        take a path under a collection; a route whose path this cannot read is refused too."""
        for route in routes:
            path = getattr(route, "path", None)
            if not isinstance(path, str):
                raise RouteConflict(f"cannot tell whether route {route!r} takes paths under {PREFIX}/<collection>")
            template = f"{path}/{{rest:path}}" if isinstance(route, Mount) else path
            literal, parameter, _ = template.partition("{")
            for collection in sorted(self.collections):
                own = f"{PREFIX}/{collection}"
                overlaps = (
                    (own + "/").startswith(literal) or literal.startswith(own + "/")
                    if parameter
                    else literal == own or literal.startswith(own + "/")
                )
                if overlaps:
                    raise RouteConflict(f"route {path} would compete with the routes of collection {collection!r}")


class CollectionDispatch:
    """The app router's front door: a request for one of the five operations of a collection goes straight to its
    endpoint, every other request to the router (``app``) as before.

    FastAPI first searched the app's routers for the route (:class:`CollectionRouter`) and then ran its request
    handler around the endpoint (two exit stacks, an exception wrapper, the dependencies, of which these endpoints
    declare none, the body, which they read themselves): together about a quarter of the CPU of a GET of one entity
    (``bench/http_load.py``). This gives the endpoint the request FastAPI would: the same route, endpoint, path
    parameter and router in the scope, so telemetry and the audit log name the same route. An error the endpoint
    raises reaches the app's exception handlers through Starlette's ``ExceptionMiddleware``, which holds the same
    handlers the route's own wrapper used, so the problem document is the same. It stands inside every middleware.

    A request FastAPI could route otherwise is left to it: another method (HEAD, PATCH, OPTIONS), a root path, a path
    with a line break (a route's pattern treats those its own way), FastAPI's native telemetry, a route with a body
    limit or dependencies of its own.

        app.router.middleware_stack = CollectionDispatch(collection_routers, app.router, app.router.middleware_stack)
    """

    def __init__(self, routers: Iterable[CollectionRouter], router: Any, app: ASGIApp) -> None:
        self.router = router
        self.app = app
        self.routes = {
            key: route
            for own in routers
            for key, route in own.operations.items()
            if route.max_body_size is None and not route.dependant.dependencies
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith(PREFIX + "/")
            and not scope.get("root_path")
            and scope.get("fastapi.telemetry") is None
            and "\n" not in path
        ):
            collection, slash, rest = path[len(PREFIX) + 1 :].partition("/")
            route = self.routes.get((scope["method"], collection, bool(slash)))
            if route is not None:
                params = dict(scope.get("path_params", {}))  # Starlette's route adds its own to any found before
                if slash:
                    params["entity_id"] = rest
                scope.setdefault("router", self.router)
                scope.update(endpoint=route.endpoint, path_params=params, route=route)
                response = await route.endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_routers(registry: SchemaRegistry) -> list[CollectionRouter]:
    """One :class:`CollectionRouter` per collection of ``registry``, for the app to mount side by side.

    Side by side, not nested in one router for them all: FastAPI matches a request against an included router
    and then again against the routes of the one that matched, so each level of nesting matched the request's
    own collection once more, and a GET of one entity spent a fifth of its CPU finding its route."""
    routers = []
    for schema in registry.latest():
        own = CollectionRouter([schema.collection], prefix=PREFIX)
        _add_collection(own, schema)
        routers.append(own)
    return routers


def _entity_response(
    schema: SchemaVersion,
    stored: StoredEntity,
    caller: Caller,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> EntityResponse:
    assert stored.payload is not None
    return EntityResponse(
        public_view(schema, stored.payload, caller),
        status_code=status,
        headers={"ETag": stored.etag, **(headers or {})},
    )


Handler = Callable[[Request, Caller, Exchange], Awaitable[Response]]
"""An operation's work once its caller is authorised: what it answers."""


def _add_collection(router: CollectionRouter, schema: SchemaVersion) -> None:
    collection = schema.collection
    filters = frozenset(schema.filterable_fields) - _RESERVED

    async def list_entities(request: Request, caller: Caller, exchange: Exchange) -> Response:
        return await _list(schema, filters, request, caller, exchange)

    async def create_entity(request: Request, caller: Caller, exchange: Exchange) -> Response:
        entity = parse_entity(await request.body(), request.headers.get("content-type"))
        validated(schema, entity)
        caller.check_city(entity["city"])
        record = audit_record(request, caller, "entity.created", resource=entity["id"], status=201)
        stored = await exchange.store.create(entity, schema, publisher_of(caller), record)
        mark_audited(request)
        location = request_link(request, path=f"{PREFIX}/{collection}/{path_segment(entity['id'])}")
        return _entity_response(schema, stored, caller, 201, {"Location": location})

    async def get_entity(request: Request, caller: Caller, exchange: Exchange) -> Response:
        return await _get_json(schema, request, caller, exchange, request.path_params["entity_id"])

    async def put_entity(request: Request, caller: Caller, exchange: Exchange) -> Response:
        entity_id: str = request.path_params["entity_id"]
        entity = parse_entity(await request.body(), request.headers.get("content-type"))
        if entity.get("id") != entity_id:
            raise BadRequest(f"the body's id {entity.get('id')!r} differs from the id in the path {entity_id!r}")
        entity = await _kept(schema, caller, exchange, entity)
        validated(schema, entity)
        caller.check_city(entity["city"])
        record = audit_record(request, caller, "entity.put", resource=entity_id, status=200)
        stored, outcome = await exchange.store.put(
            entity, schema, publisher_of(caller), request.headers.get("if-match"), record
        )
        mark_audited(request)
        status = 201 if outcome.value == "created" else 200
        headers = {"Location": request_link(request)} if status == 201 else {}
        return _entity_response(schema, stored, caller, status, headers)

    async def delete_entity(request: Request, caller: Caller, exchange: Exchange) -> Response:
        entity_id: str = request.path_params["entity_id"]
        current = await exchange.store.get(entity_id)
        if current is None or current.collection != collection:
            raise NotFound(f"no {schema.type_name} {entity_id}")
        caller.check_city(current.city)
        record = audit_record(request, caller, "entity.deleted", resource=entity_id, status=204)
        await exchange.store.delete(entity_id, publisher_of(caller), request.headers.get("if-match"), record)
        mark_audited(request)
        return Response(status_code=204)

    base, item = f"/{collection}", f"/{collection}/{{entity_id:path}}"
    read, write = f"{collection}:read", f"{collection}:write"
    for path, method, name, scope, handler in (
        (base, "GET", "list", read, list_entities),
        (base, "POST", "create", write, create_entity),
        (item, "GET", "get", read, get_entity),
        (item, "PUT", "put", write, put_entity),
        (item, "DELETE", "delete", write, delete_entity),
    ):
        router.add_api_route(
            path, _authorised(scope, handler), methods=[method], name=f"{name}-{collection}", include_in_schema=False
        )
        route = router.routes[-1]
        assert isinstance(route, APIRoute)
        router.operations[(method, collection, path == item)] = route
    add_patch_route(router, schema, PREFIX)


def _authorised(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that takes the request alone: it authorises the caller for ``scope``, runs ``handler`` and adds
    the rate-limit headers after the answer's own, where FastAPI put a dependency's headers.

    No dependency is declared, because FastAPI's resolution of the ones these routes had (services, bearer token,
    caller, scope, exchange) cost a GET of one entity about a sixth of its CPU (bench/http_load.py). Nothing is
    lost to the hub's OpenAPI document, which leaves them out either way: the mandate (openapi/<collection>.yaml)
    documents them. :func:`gateway.auth.authorize` raises what the dependency raised, in the same order."""

    async def endpoint(request: Request) -> Response:
        caller, limits = await authorize(request, scope)
        response = await handler(request, caller, await exchange_of(request))
        response.headers.raw.extend(Headers(limits).raw)
        return response

    return endpoint


async def _get_json(
    schema: SchemaVersion, request: Request, caller: Caller, exchange: Exchange, entity_id: str
) -> Response:
    """A GET of one entity, its body the JSON text the store reads (:meth:`EntityStore.get_json`): the answer the
    parsed payload gets from :func:`_entity_response`, byte for byte on SQLite, and on PostgreSQL the same JSON
    value as JSONB renders it. The personal fields are removed in SQL when the caller may see them in no city; when
    it depends on the entity's city, the payload is parsed and viewed once that city is known (:func:`public_view`),
    and rendered by orjson."""
    hidden = hidden_fields(schema, caller, None)
    found = await exchange.store.get_json(entity_id, hidden or frozenset())
    if found is None or found.collection != schema.collection:
        raise NotFound(f"no {schema.type_name} {entity_id}")
    caller.check_read(found.city)
    if found.etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": found.etag})
    body = found.text
    if hidden is None and not caller.may_read_personal(schema.collection, found.city):
        body = orjson.dumps(public_view(schema, orjson.loads(body), caller))
    return Response(body, headers={"ETag": found.etag}, media_type="application/json")


async def _kept(schema: SchemaVersion, caller: Caller, exchange: Exchange, entity: JsonObject) -> JsonObject:
    """A PUT's entity, after checking the caller may take over the current one, with the fields it cannot see."""
    current = await exchange.store.get(entity["id"])
    if current is None:
        return entity
    caller.check_city(current.city)  # nor may it take over another city's entity
    same = current.payload if current.collection == schema.collection else None
    return keep_unseen(schema, caller, entity, same)  # never erase what it cannot see


def _parse_list_query(
    params: QueryParams, filters: frozenset[str], codec: CursorCodec, schema: SchemaVersion
) -> tuple[ListQuery, dict[str, str]]:
    """The list query and the part of it a cursor is bound to; a 400 problem for anything malformed."""
    unknown = sorted(set(params) - _RESERVED - filters)
    if unknown:
        known = ", ".join(sorted(filters | {"city", "updatedSince", "bbox"}))
        raise BadRequest(f"unknown query parameter(s) {', '.join(unknown)}; filters of {schema.collection}: {known}")
    for name in params:
        if len(params.getlist(name)) > 1:
            raise BadRequest(f"query parameter {name!r} is given more than once")
    query_key = {k: v for k, v in sorted(params.items()) if k not in ("cursor", "limit")}
    cursor = params.get("cursor")
    query = ListQuery(
        limit=_limit(params.get("limit")),
        after=codec.decode(cursor, query_key) if cursor else None,
        city=_city(params.get("city")),
        updated_since=_instant(params.get("updatedSince")),
        bbox=_bbox(params.get("bbox")),
        equals={k: _typed(schema, k, v) for k, v in params.items() if k in filters},
    )
    return query, query_key


async def _list(
    schema: SchemaVersion, filters: frozenset[str], request: Request, caller: Caller, exchange: Exchange
) -> Response:
    codec = CursorCodec(exchange.services.settings.secret)
    query, query_key = _parse_list_query(request.query_params, filters, codec, schema)
    if query.city is not None:
        caller.check_read(query.city)
    if caller.read_cities is not None and "*" not in caller.read_cities:
        query = replace(query, cities=caller.read_cities)
    hidden = hidden_fields(schema, caller, query.city)
    texts = None if hidden is None else await exchange.store.list_json(schema.collection, query, hidden)
    if texts is not None:
        items, last = texts
    else:
        payloads, last = await exchange.store.list_payloads(schema.collection, query)
        view = public_viewer(schema, caller)
        page = [view(payload) for payload in payloads]
    next_url = None
    headers = {}
    if last is not None:
        next_params = {**query_key, "limit": str(query.limit), "cursor": codec.encode(last, query_key)}
        next_url = request_link(request, next_params)
        headers["Link"] = f'<{next_url}>; rel="next"'
    if texts is None:
        return EntityResponse({"items": page, "next": next_url}, headers=headers)
    # The document EntityResponse renders for the same page, put together from the entities' own JSON text.
    body = b'{"items":[' + b",".join(items) + b'],"next":' + orjson.dumps(next_url) + b"}"
    return Response(body, headers=headers, media_type="application/json")


def _typed(schema: SchemaVersion, name: str, raw: str) -> str | int | float | bool:
    """A query string value as the JSON value it stands for: ``routeType=3`` means the number 3."""
    spec = schema.document["properties"].get(name, {})
    ref = str(spec.get("$ref", ""))
    if ref.startswith("#/$defs/"):
        spec = schema.document["$defs"][ref.removeprefix("#/$defs/")]
    for value in spec.get("enum", ()):
        if not isinstance(value, str) and str(value).lower() == raw.lower():
            return value  # type: ignore[no-any-return]
    return raw


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_LIMIT}; {value} is out of range")
    return value


def _city(raw: str | None) -> str | None:
    if raw is not None and not _CITY.match(raw):
        raise BadRequest(f"city must be a tenant code such as 'astana', not {raw!r}")
    if raw is not None:
        message = unknown_city_message(raw)
        if message is not None:
            raise BadRequest(message)
    return raw


def _instant(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"updatedSince must be an RFC 3339 date-time with offset, not {raw!r}") from None
    if moment.tzinfo is None:
        raise BadRequest(f"updatedSince {raw!r} has no offset; add Z or +05:00")
    return moment.timestamp()


def _bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    try:
        min_lon, min_lat, max_lon, max_lat = (float(part) for part in raw.split(","))
    except ValueError:
        raise BadRequest(f"bbox must be minLon,minLat,maxLon,maxLat, not {raw!r}") from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise BadRequest(f"bbox {raw!r} is not a box [lon, lat] with min <= max")
    return min_lon, min_lat, max_lon, max_lat
