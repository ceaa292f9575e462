"""What every exchange route shares: the store and registry, reading and validating entities, redaction.

entity = parse_entity(await request.body(), request.headers.get("content-type"))
schema = validated(registry.get("service-requests"), entity)   # 422 problem with every error
caller.check_city(entity["city"])                               # 403 problem
body = public_view(schema, stored.payload, caller)              # x-personal removed without read-personal
return EntityResponse(body, headers={"ETag": stored.etag})      # the JSON document, rendered by orjson
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from gateway.audit import AuditRecord
from gateway.auth import Caller
from gateway.cities import check_known_city
from gateway.errors import BadRequest, GatewayError, ValidationFailed
from gateway.services import Services, get_services
from gateway.store.entities import EntityStore
from gateway.store.records import JsonObject, Publisher
from gateway.telemetry import current_trace_id
from schemas import SchemaRegistry, SchemaVersion

JSON_TYPES = ("application/json", "application/merge-patch+json")


class EntityResponse(JSONResponse):
    """A JSON response rendered by orjson: the document ``JSONResponse`` sends (compact, UTF-8, keys in their
    order), at a fraction of the cost. On a list page of 100 entities the standard library's encoder was the
    largest single cost of the request (``bench/http_load.py``).

    Numbers keep their value but a float may be spelt differently (``1e-05`` becomes ``0.00001``), and an integer
    beyond 64 bits cannot be rendered; entities never hold one, because every way in parses them with orjson.

        EntityResponse({"items": [], "next": None}, headers={"Link": "..."})
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class UnsupportedMediaType(GatewayError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Exchange:
    """The exchange API's own resources, opened once per app."""

    def __init__(self, services: Services, registry: SchemaRegistry) -> None:
        self.services = services
        self.registry = registry
        self.store = EntityStore(services.engine, services.audit)
        self._ready = False

    async def ready(self) -> Exchange:
        if not self._ready:
            await self.store.ensure()
            self._ready = True
        return self


async def get_exchange(request: Request, services: Annotated[Services, Depends(get_services)]) -> Exchange:
    return await exchange_of(request, services)


async def exchange_of(request: Request, services: Services | None = None) -> Exchange:
    """The app's :class:`Exchange`, made ready on first use: :data:`ExchangeDep` without a dependency."""
    if services is None:
        services = request.app.state.services
    exchange: Exchange | None = getattr(request.app.state, "exchange", None)
    if exchange is None or exchange.services is not services:
        exchange = Exchange(services, request.app.state.registry)
        request.app.state.exchange = exchange
    return await exchange.ready()


ExchangeDep = Annotated[Exchange, Depends(get_exchange)]


def parse_entity(body: bytes, content_type: str | None) -> JsonObject:
    """The JSON object in a request body; 415 for another media type, 400 for malformed JSON or a non-object."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"send the entity as application/json, not {media or 'no Content-Type'}")
    try:
        entity = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(entity, dict):
        raise BadRequest("the body must be one JSON object (an entity)")
    return entity


def validated(schema: SchemaVersion, entity: JsonObject) -> SchemaVersion:
    """``schema`` when the entity conforms to it and its city is known; otherwise a 422 problem listing every
    error."""
    if schema.is_valid(entity):
        check_known_city(entity.get("city"))
        return schema
    issues = schema.explain(entity)
    first = issues[0] if issues else None
    detail = f"the {schema.type_name} is invalid: {len(issues)} error(s)"
    if first is not None:
        detail += f"; first: {first.pointer or '/'}: {first.message}"
    raise ValidationFailed(detail, errors=[issue.as_dict() for issue in issues])


def public_view(schema: SchemaVersion, entity: JsonObject, caller: Caller) -> JsonObject:
    """The entity as ``caller`` may see it: without x-personal fields unless it holds ``read-personal`` and the
    entity's city is one of its own (personal data never crosses to another city's systems)."""
    personal = schema.personal_fields
    if personal.isdisjoint(entity) or caller.may_read_personal(schema.collection, str(entity.get("city"))):
        return entity
    return _without(entity, personal)


def _without(entity: JsonObject, personal: frozenset[str]) -> JsonObject:
    """What ``schema.redact`` returns, built by copying the entity and deleting its few personal fields rather than
    testing each of its fields: this runs for every entity of every page."""
    view = dict(entity)
    for name in personal.intersection(entity):
        del view[name]
    return view


def public_viewer(schema: SchemaVersion, caller: Caller) -> Callable[[JsonObject], JsonObject]:
    """:func:`public_view` for many entities of ``schema`` seen by one ``caller`` (a page): the same views, with the
    caller's right to each city's personal fields decided once per city rather than once per entity.

        view = public_viewer(schema, caller)
        items = [view(entity) for entity in page]
    """
    personal = schema.personal_fields
    collection = schema.collection
    decided: dict[str, bool] = {}

    def view(entity: JsonObject) -> JsonObject:
        if personal.isdisjoint(entity):
            return entity
        city = str(entity.get("city"))
        allowed = decided.get(city)
        if allowed is None:
            allowed = decided[city] = caller.may_read_personal(collection, city)
        return entity if allowed else _without(entity, personal)

    return view


def hidden_fields(schema: SchemaVersion, caller: Caller, city: str | None) -> frozenset[str] | None:
    """The members :func:`public_viewer` removes from every entity of a page that holds only ``city``'s entities (any
    city's when None), where it removes the same ones from each (those of them the entity has); None where that
    depends on each entity's city (a client with ``read-personal``, listing more than one city).

        hidden = hidden_fields(schema, caller, query.city)   # frozenset(): every entity as stored
    """
    personal = schema.personal_fields
    if not personal or not caller.has_scope(f"{schema.collection}:read-personal"):
        return personal  # nothing to hide, or hidden in every city (may_read_personal needs the scope)
    if city is None:
        return None
    return frozenset() if caller.may_read_personal(schema.collection, city) else personal


def publisher_of(caller: Caller) -> Publisher:
    return Publisher(client_id=caller.client_id, member=caller.member)


def audit_record(
    request: Request, caller: Caller, action: str, *, resource: str, status: int, detail: dict[str, Any] | None = None
) -> AuditRecord:
    """The audit record of a write, to commit in the same transaction as the data it describes.

    Once the write has committed, the route calls :func:`mark_audited` so the audit middleware does not record
    the call a second time; a write that fails is recorded by the middleware with its error status.
    """
    route = request.scope.get("route")
    return AuditRecord(
        action=action,
        outcome="ok",
        status=status,
        client_id=caller.client_id,
        member=caller.member,
        method=request.method,
        route=getattr(route, "path", None),
        resource=resource,
        trace_id=current_trace_id(),
        detail=detail,
    )


def mark_audited(request: Request) -> None:
    request.state.audited = True
