"""NGSI-LD (ETSI GS CIM 009) at ``/ngsi-ld/v1/``, over the hub's canonical store.

FIWARE tools (Orion clients, QuantumLeap, Grafana's NGSI-LD sources) read and write context entities; Qala's
entities already carry NGSI-LD identifiers (``urn:ngsi-ld:<Type>:<city>:<localId>``) and Smart Data Models field
names, so the facade only changes the representation:

* **normalized** (default): each attribute as a ``Property`` (``{"type": "Property", "value": ...}``), a
  ``GeoProperty`` (``location``), a ``Relationship`` (``ref...`` fields, ``object``) or a ``LanguageProperty``
  (names in kk/ru/en, ``languageMap``); **keyValues** (``options=keyValues``) is the canonical entity itself.
* ``NGSILD-Tenant`` is the city code: absent, every city the caller may read; unknown, ``NonexistentTenant``.
* The same OAuth scopes, cities and redaction as ``/api/v1``: ``<collection>:read`` to query,
  ``<collection>:write`` to create or patch, personal fields only with ``read-personal``; writes are validated
  against the canonical schema, stored and audited like any other.

Supported queries: ``type``, ``id`` (comma list), ``q`` with ``==`` joined by ``;``, ``georel=near;maxDistance==N``
or ``within`` with ``geometry``/``coordinates``, ``limit`` (default 20, at most 1000), ``offset``, ``count=true``
(``NGSILD-Results-Count``). Anything else of the query language is refused with ``BadRequestData`` rather than
answered wrongly. Subscriptions are in :mod:`gateway.facades.ngsi_ld_subscriptions`.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from gateway.auth import Caller, authenticate, bearer_token
from gateway.errors import GatewayError
from gateway.exchange import Exchange, audit_record, get_exchange, mark_audited, public_view, publisher_of, validated
from gateway.services import Services, get_services
from gateway.store.entities import ListQuery
from schemas import CityRegistry, SchemaVersion, UnknownType
from schemas.ngsi_ld import (
    CONTEXT_PATH,
    CORE_CONTEXT,
    canonical,
    context_document,
    context_link,
    normalized,
    short_type,
)

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000
EARTH_RADIUS_M = 6_371_008.8


class NgsiError(Exception):
    """An NGSI-LD problem: ``type`` from the spec's error list, with its HTTP status."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail

    def response(self) -> Response:
        body = {"type": ERROR_BASE + self.kind, "title": self.kind, "status": self.status, "detail": self.detail}
        return Response(orjson.dumps(body), status_code=self.status, media_type="application/json")


_FROM_STATUS = {400: "BadRequestData", 401: "AccessDenied", 403: "AccessDenied", 404: "ResourceNotFound"}


def from_gateway(error: GatewayError) -> NgsiError:
    kind = {409: "AlreadyExists", 412: "Conflict", 422: "BadRequestData"}.get(error.status) or _FROM_STATUS.get(
        error.status, "InternalError" if error.status >= 500 else "BadRequestData"
    )
    return NgsiError(error.status, kind, str(error))


# -- queries ---------------------------------------------------------------------------------------------------


def parse_q(q: str | None) -> dict[str, Any]:
    """``q`` as attribute equalities; the rest of the query language is refused, never approximated.

    >>> parse_q('status=="open";priority==2')
    {'status': 'open', 'priority': 2}
    """
    if not q:
        return {}
    terms: dict[str, Any] = {}
    for clause in q.split(";"):
        name, sep, raw = clause.partition("==")
        if not sep or not name.strip() or any(c in clause for c in "|()<>!~") or ".." in raw:
            raise NgsiError(400, "BadRequestData", f"q supports attr==value joined by ';' only, not {clause!r}")
        try:
            terms[name.strip()] = json.loads(raw)
        except ValueError:
            terms[name.strip()] = raw
    return terms


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _inside(point: tuple[float, float], ring: list[list[float]]) -> bool:
    x, y, inside = point[0], point[1], False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


class GeoQuery:
    """``georel`` with ``geometry`` and ``coordinates``: near (max distance from a point) or within a polygon."""

    def __init__(self, georel: str, geometry: str | None, coordinates: str | None) -> None:
        try:
            shape = json.loads(coordinates or "")
        except ValueError:
            raise NgsiError(400, "BadRequestData", "coordinates must be a JSON array") from None
        relation, _, modifier = georel.partition(";")
        self.relation = relation
        if relation == "near" and geometry == "Point" and modifier.startswith("maxDistance=="):
            self.point = (float(shape[0]), float(shape[1]))
            self.max_distance = float(modifier.removeprefix("maxDistance=="))
            dlat = math.degrees(self.max_distance / EARTH_RADIUS_M)
            dlon = dlat / max(math.cos(math.radians(self.point[1])), 1e-6)
            self.bbox = (self.point[0] - dlon, self.point[1] - dlat, self.point[0] + dlon, self.point[1] + dlat)
        elif relation == "within" and geometry == "Polygon":
            self.ring = [[float(x), float(y)] for x, y in shape[0]]
            xs, ys = [p[0] for p in self.ring], [p[1] for p in self.ring]
            self.bbox = (min(xs), min(ys), max(xs), max(ys))
        else:
            raise NgsiError(400, "BadRequestData", "georel supports near;maxDistance==N with a Point, within a Polygon")

    def matches(self, entity: Mapping[str, Any]) -> bool:
        location = entity.get("location") or {}
        if location.get("type") != "Point":
            return False
        point = (float(location["coordinates"][0]), float(location["coordinates"][1]))
        if self.relation == "near":
            return _distance_m(point, self.point) <= self.max_distance
        return _inside(point, self.ring)


def whole_number(raw: str | None, name: str, default: int, ceiling: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > ceiling:
        raise NgsiError(400, "BadRequestData", f"{name} must be a whole number from 0 to {ceiling}, not {raw!r}")
    return int(raw)


async def _matching(
    exchange: Exchange, schema: SchemaVersion, caller: Caller, city: str | None, params: Mapping[str, str]
) -> AsyncIterator[dict[str, Any]]:
    terms = parse_q(params.get("q"))
    ids = {i for i in params.get("id", "").split(",") if i}
    geo = (
        GeoQuery(params["georel"], params.get("geometry"), params.get("coordinates")) if params.get("georel") else None
    )
    filterable = set(schema.filterable_fields)
    equals = {k: v for k, v in terms.items() if k in filterable and isinstance(v, str | int | float | bool)}
    narrowed = caller.read_cities if caller.read_cities is not None and "*" not in caller.read_cities else None
    query = ListQuery(limit=1000, city=city, bbox=geo.bbox if geo else None, equals=equals, cities=narrowed)
    while True:
        page, last = await exchange.store.list_page(schema.collection, query)
        for stored in page:
            entity = stored.payload
            if entity is None or (ids and entity["id"] not in ids):
                continue
            if any(entity.get(k) != v for k, v in terms.items()) or (geo and not geo.matches(entity)):
                continue
            yield entity
        if last is None:
            return
        query = replace(query, after=last)


# -- routes ----------------------------------------------------------------------------------------------------


def tenant_of(request: Request) -> str | None:
    tenant = request.headers.get("ngsild-tenant")
    if tenant is not None and not CityRegistry.load().is_known(tenant):
        raise NgsiError(404, "NonexistentTenant", f"no tenant {tenant!r}: tenants are city codes (astana, ...)")
    return tenant


async def authenticated(request: Request) -> tuple[Caller, Services]:
    """The caller behind the bearer token; ``AccessDenied`` (401) without a valid one."""
    services = await get_services(request)
    try:
        caller = await authenticate(request, Response(), services, bearer_token(request))
    except GatewayError as error:
        raise from_gateway(error) from error
    return caller, services


async def _caller(request: Request, scope: str) -> tuple[Caller, Exchange]:
    caller, services = await authenticated(request)
    if not caller.has_scope(scope):
        raise NgsiError(403, "AccessDenied", f"the token lacks the {scope} scope")
    return caller, await get_exchange(request, services)


def _check_read(caller: Caller, city: str) -> None:
    """Refuse (403) a city the caller's reads are narrowed away from, as ``/api/v1`` does."""
    try:
        caller.check_read(city)
    except GatewayError as error:
        raise from_gateway(error) from error


def schema_of(request: Request, type_name: str | None) -> SchemaVersion:
    """The canonical type an NGSI-LD type names: its short name, or its full IRI in the hub's ``@context``."""
    if not type_name:
        raise NgsiError(400, "BadRequestData", "give type= (GET /ngsi-ld/v1/types lists them)")
    type_name = short_type(type_name)
    try:
        schema: SchemaVersion = request.app.state.registry.get(type_name)
    except UnknownType:
        raise NgsiError(400, "BadRequestData", f"no entity type {type_name!r}") from None
    if schema.type_name != type_name:  # a collection name is not an NGSI-LD type
        raise NgsiError(400, "BadRequestData", f"no entity type {type_name!r}; did you mean {schema.type_name}?")
    return schema


def _type_of(entity_id: str) -> str:
    parts = entity_id.split(":")
    if len(parts) < 5 or parts[:2] != ["urn", "ngsi-ld"]:
        raise NgsiError(400, "BadRequestData", f"{entity_id!r} is not an NGSI-LD URN urn:ngsi-ld:<Type>:<city>:<id>")
    return parts[2]


def _wants_ld(request: Request) -> bool:
    return "application/ld+json" in request.headers.get("accept", "")


def with_context(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the hub's ``@context`` when the caller accepts JSON-LD (JSON gets a ``Link`` header)."""
    if not _wants_ld(request):
        return body
    return {**body, "@context": [request.app.state.settings.issuer + CONTEXT_PATH, CORE_CONTEXT]}


def _represent(request: Request, schema: SchemaVersion, entities: list[dict[str, Any]], key_values: bool) -> Any:
    return [with_context(request, e if key_values else normalized(schema, e)) for e in entities]


def json_response(request: Request, body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    """An NGSI-LD answer: JSON-LD when accepted, otherwise JSON with the ``@context`` in a ``Link`` header."""
    if _wants_ld(request):
        media, link = "application/ld+json", {}
    else:
        media, link = "application/json", {"Link": context_link(request.app.state.settings.issuer)}
    return Response(orjson.dumps(body), status_code=status, media_type=media, headers={**link, **(headers or {})})


def _key_values(request: Request) -> bool:
    options = set(request.query_params.get("options", "").split(","))
    return "keyValues" in options or request.query_params.get("format") == "simplified"


@router.get("/entities", include_in_schema=False)
async def query_entities(request: Request) -> Response:
    try:
        params = dict(request.query_params)
        tenant = tenant_of(request)
        first_id = params.get("id", "").split(",")[0]
        schema = schema_of(request, params.get("type") or (_type_of(first_id) if first_id else None))
        caller, exchange = await _caller(request, f"{schema.collection}:read")
        limit = whole_number(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
        offset = whole_number(params.get("offset"), "offset", 0, 10_000_000)
        count = params.get("count") == "true"
        found: list[dict[str, Any]] = []
        total = 0
        if tenant is not None:
            _check_read(caller, tenant)
        async for entity in _matching(exchange, schema, caller, tenant, params):
            total += 1
            if offset < total <= offset + limit:
                found.append(public_view(schema, entity, caller))
            elif total > offset + limit and not count:
                break
        headers = {"NGSILD-Results-Count": str(total)} if count else {}
        return json_response(request, _represent(request, schema, found, _key_values(request)), headers)
    except NgsiError as error:
        return error.response()


@router.get("/entities/{entity_id}", include_in_schema=False)
async def get_entity(request: Request, entity_id: str) -> Response:
    try:
        tenant = tenant_of(request)
        schema = schema_of(request, _type_of(entity_id))
        caller, exchange = await _caller(request, f"{schema.collection}:read")
        stored = await exchange.store.get(entity_id)
        if stored is None or stored.payload is None or (tenant and stored.city != tenant):
            raise NgsiError(404, "ResourceNotFound", f"no entity {entity_id}")
        _check_read(caller, stored.city)
        (body,) = _represent(request, schema, [public_view(schema, stored.payload, caller)], _key_values(request))
        return json_response(request, body)
    except NgsiError as error:
        return error.response()


async def json_body(request: Request) -> dict[str, Any]:
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in ("application/json", "application/ld+json"):
        raise NgsiError(415, "UnsupportedMediaType", "send application/json or application/ld+json")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise NgsiError(400, "InvalidRequest", f"the body is not JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise NgsiError(400, "BadRequestData", "the body must be a JSON object")
    return body


@router.post("/entities", include_in_schema=False)
async def create_entity(request: Request) -> Response:
    try:
        entity = canonical(await json_body(request))
        schema = schema_of(request, str(entity.get("type", "")))
        caller, exchange = await _caller(request, f"{schema.collection}:write")
        tenant = tenant_of(request)
        if tenant and entity.get("city") != tenant:
            raise NgsiError(400, "BadRequestData", f"the entity's city {entity.get('city')!r} is not tenant {tenant}")
        try:
            validated(schema, entity)
            caller.check_city(entity["city"])
            record = audit_record(request, caller, "entity.created", resource=entity["id"], status=201)
            await exchange.store.create(entity, schema, publisher_of(caller), record)
        except GatewayError as error:
            raise from_gateway(error) from error
        mark_audited(request)
        return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{entity['id']}"})
    except NgsiError as error:
        return error.response()


@router.patch("/entities/{entity_id}/attrs", include_in_schema=False)
async def patch_attributes(request: Request, entity_id: str) -> Response:
    try:
        changes = canonical(await json_body(request))
        if set(changes) & {"id", "type", "city"}:
            raise NgsiError(400, "BadRequestData", "id, type and city cannot be changed")
        schema = schema_of(request, _type_of(entity_id))
        caller, exchange = await _caller(request, f"{schema.collection}:write")
        stored = await exchange.store.get(entity_id)
        tenant = tenant_of(request)
        if stored is None or stored.payload is None or (tenant and stored.city != tenant):
            raise NgsiError(404, "ResourceNotFound", f"no entity {entity_id}")
        entity = {**stored.payload, **changes}
        try:
            caller.check_city(stored.city)
            validated(schema, entity)
            record = audit_record(request, caller, "entity.put", resource=entity_id, status=204)
            await exchange.store.put(entity, schema, publisher_of(caller), stored.etag, record)
        except GatewayError as error:
            raise from_gateway(error) from error
        mark_audited(request)
        return Response(status_code=204)
    except NgsiError as error:
        return error.response()


@router.get("/types", include_in_schema=False)
async def types(request: Request) -> Response:
    names = [schema.type_name for schema in request.app.state.registry.latest()]
    body = {"id": "urn:ngsi-ld:EntityTypeList:qala", "type": "EntityTypeList", "typeList": names}
    return json_response(request, body)


@router.get("/jsonldContexts/qala.jsonld", include_in_schema=False)
async def context(request: Request) -> Response:
    body = context_document(request.app.state.registry.latest())
    return Response(orjson.dumps(body), media_type="application/ld+json")
