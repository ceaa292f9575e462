"""NGSI-LD subscriptions (ETSI GS CIM 009 §5.8) at ``/ngsi-ld/v1/subscriptions``, over the hub's own.

    curl -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'NGSILD-Tenant: astana' \\
         -d '{"type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
              "q": "airQualityLevel==\\"unhealthy\\"",
              "notification": {"format": "keyValues", "attributes": ["pm25", "location"],
                               "endpoint": {"uri": "https://utility.example.kz/notify"}}}' \\
         http://127.0.0.1:8000/ngsi-ld/v1/subscriptions

Each one *is* a subscription of ``/api/v1/subscriptions`` owned by the caller: the same scopes
(``<collection>:read`` for every type), webhook URL rules (https, public addresses), durable signed delivery and
per-owner redaction; only its deliveries are NGSI-LD Notifications (:mod:`gateway.subscriptions.payload`). The
201 answer carries the webhook ``secret`` once, as ``POST /api/v1/subscriptions`` does; the id is
``urn:ngsi-ld:Subscription:<the /api/v1 id>``, so ``/api/v1/subscriptions/<id>/deliveries`` and
``.../rotate-secret`` work on it too.

How the members map:

* ``entities[].type`` (short name, or the full IRI of the hub's ``@context``): the selected types;
* ``q``: equalities on the types' filterable fields, as ``GET /ngsi-ld/v1/entities`` reads them;
* ``NGSILD-Tenant``: the one city selected; absent, every city the owner may read;
* ``notification.endpoint.uri``: the webhook URL; ``format`` ``normalized`` (default) or ``keyValues``;
  ``attributes``: the attributes each notified entity keeps;
* ``isActive``: pause and resume; ``subscriptionName``: the name; ``id``: chosen by the hub unless given as
  ``urn:ngsi-ld:Subscription:<name>`` (409 ``AlreadyExists`` when taken); ``description`` is accepted, not kept;
* ``status`` reads ``active`` or ``paused``; a subscription the hub stopped after its receiver kept failing reads
  ``paused`` with ``notification.status`` ``failed``, and ``isActive: true`` resumes it. ``timesSent`` counts
  delivery attempts, ``timesFailed`` the failed ones.

Refused with ``BadRequestData`` rather than answered approximately: ``watchedAttributes``,
``notificationTrigger``, ``timeInterval``, ``throttling``, ``expiresAt``, ``geoQ``, ``temporalQ``, ``scopeQ``,
``csf``, ``lang``, ``entities`` by ``id``/``idPattern``, an ``accept`` other than ``application/json``, and
``receiverInfo``/``notifierInfo``. Deletions are not notified (the base Notification carries entities only).
``PATCH`` merges the fragment into the subscription (``notification`` and its ``endpoint`` member by member)
and checks the result as a creation would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.auth import Caller
from gateway.errors import GatewayError, NotFound, ValidationFailed
from gateway.facades.ngsi_ld import (
    NgsiError,
    authenticated,
    from_gateway,
    json_body,
    json_response,
    parse_q,
    schema_of,
    tenant_of,
    whole_number,
    with_context,
)
from gateway.services import Services
from gateway.store.entities import EntityStore
from gateway.subscriptions.payload import SUBSCRIPTION_URN, Payload, instant
from gateway.subscriptions.selection import Selection, check_readable
from gateway.subscriptions.store import DeliverySummary, Subscription, SubscriptionStore
from gateway.subscriptions.targets import check_target
from schemas.ngsi_ld import FORMATS

router = APIRouter(prefix="/ngsi-ld/v1/subscriptions", tags=["NGSI-LD"])

MEMBERS = frozenset(
    {"id", "type", "@context", "subscriptionName", "description", "entities", "q", "isActive", "notification"}
)
NOTIFICATION_MEMBERS = frozenset({"attributes", "format", "endpoint"})
READ_ONLY = frozenset({"status"})
READ_ONLY_NOTIFICATION = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
WHY_NOT = {
    "watchedAttributes": "every change of a selected entity is notified; watchedAttributes is not offered",
    "notificationTrigger": "creations and updates are notified, deletions never; notificationTrigger is not offered",
    "timeInterval": "notifications follow the changes as they commit; timeInterval is not offered",
    "throttling": "notifications follow the changes as they commit, in batches; throttling is not offered",
    "expiresAt": "subscriptions do not expire here (DELETE one when done); expiresAt is not offered",
    "geoQ": "geoQ is not offered on subscriptions: select a city with NGSILD-Tenant "
    "(or a bounding box through /api/v1/subscriptions)",
}
LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000


def _bad(detail: str) -> NgsiError:
    return NgsiError(400, "BadRequestData", detail)


@dataclass(frozen=True)
class Order:
    """A Subscription body read into what the hub's subscription is made of."""

    selection: Selection
    payload: Payload
    url: str
    name: str | None
    active: bool
    local_id: str | None


def _refuse_unknown(members: Any, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(members) - allowed)
    if unknown:
        raise _bad(WHY_NOT.get(unknown[0]) or f"{where}{unknown[0]} is not offered by this hub")


async def _order(
    request: Request, body: dict[str, Any], place: dict[str, Any], caller: Caller, current: Subscription | None = None
) -> Order:
    """Read and check a Subscription body: types the caller may read, a filterable ``q``, a safe URL. What a
        PATCH leaves as it was (``current``) is not checked again: an owner may pause a subscription whose types it
        may no longer read, as on ``/api/v1``, where delivery then stops sending them. ``place`` holds the selection's
    ``cities`` (the tenant) and ``bbox`` (only ``/api/v1`` sets one), which NGSI-LD members do not change."""
    _refuse_unknown(body, MEMBERS, "")
    if body.get("type") != "Subscription":
        raise _bad('type must be "Subscription"')
    selection = _selection(request, body, place)
    if current is None or selection != current.selection:
        try:
            check_readable(selection, caller)
        except GatewayError as error:
            raise from_gateway(error) from error
    notification = body.get("notification")
    if not isinstance(notification, dict):
        raise _bad("notification must be an object with an endpoint {uri}")
    _refuse_unknown(notification, NOTIFICATION_MEMBERS, "notification.")
    endpoint = notification.get("endpoint")
    if not isinstance(endpoint, dict) or not isinstance(endpoint.get("uri"), str):
        raise _bad("notification.endpoint.uri must be the URL notifications are sent to")
    _refuse_unknown(endpoint, frozenset({"uri", "accept"}), "notification.endpoint.")
    if endpoint.get("accept", "application/json") != "application/json":
        raise _bad("notifications are sent as application/json (the @context in a Link header) only")
    url = endpoint["uri"]
    if current is None or url != current.url:
        try:
            url = await check_target(url, request.app.state.settings)
        except ValidationFailed as error:
            raise _bad(str(error)) from error
    form = notification.get("format", "normalized")
    if form not in FORMATS:
        raise _bad(f"notification.format must be normalized or keyValues, not {form!r}")
    attributes = _attributes(request, notification.get("attributes"), selection)
    active = body.get("isActive", True)
    if not isinstance(active, bool):
        raise _bad("isActive must be true or false")
    name = body.get("subscriptionName")
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= 200):
        raise _bad("subscriptionName must be a string of at most 200 characters")
    return Order(selection, Payload.ngsi_ld(form, attributes), url, name, active, _local_id(body.get("id")))


def _selection(request: Request, body: dict[str, Any], place: dict[str, Any]) -> Selection:
    entities = body.get("entities")
    if not isinstance(entities, list) or not entities or not all(isinstance(e, dict) for e in entities):
        raise _bad('entities must be a non-empty list of {"type": "<entity type>"}')
    types = []
    for entity in entities:
        if set(entity) - {"type"}:
            raise _bad("entities select by type only; id and idPattern are not offered")
        raw = entity.get("type")
        types.append(schema_of(request, raw if isinstance(raw, str) else None).type_name)
    q = body.get("q")
    if q is not None and not isinstance(q, str):
        raise _bad('q must be a string such as status=="open"')
    try:
        return Selection.parse({"types": types, "filters": parse_q(q), **place}, request.app.state.registry)
    except ValidationFailed as error:
        raise _bad(f"q: {error}" if q else str(error)) from error


def _attributes(request: Request, raw: Any, selection: Selection) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
        raise _bad("notification.attributes must be a non-empty list of attribute names")
    known = {
        name for type_name in selection.types for name in request.app.state.registry.get(type_name).source["properties"]
    }
    unknown = [name for name in raw if name not in known]
    if unknown:
        raise _bad(f"notification.attributes: no attribute {', '.join(unknown)} in {', '.join(selection.types)}")
    return raw


def _local_id(raw: Any) -> str | None:
    if raw is None:
        return None
    local = raw.removeprefix(SUBSCRIPTION_URN) if isinstance(raw, str) else ""
    if not (isinstance(raw, str) and raw.startswith(SUBSCRIPTION_URN) and LOCAL_ID.match(local)):
        raise _bad(f"id must be {SUBSCRIPTION_URN}<name> with a name of letters, digits, '.', '_' or '-' (at most 40)")
    return local


def represent(subscription: Subscription, summary: DeliverySummary) -> dict[str, Any]:
    """A hub subscription with an NGSI-LD payload as an NGSI-LD Subscription."""
    body: dict[str, Any] = {"id": SUBSCRIPTION_URN + subscription.id, "type": "Subscription"}
    if subscription.name:
        body["subscriptionName"] = subscription.name
    body["entities"] = [{"type": name} for name in subscription.selection.types]
    filters = subscription.selection.filters
    if filters:
        body["q"] = ";".join(f"{name}=={json.dumps(value, ensure_ascii=False)}" for name, value in filters.items())
    body["isActive"] = subscription.state == "active"
    body["status"] = "active" if subscription.state == "active" else "paused"
    payload = subscription.payload
    notification: dict[str, Any] = {}
    if payload.attributes is not None:
        notification["attributes"] = list(payload.attributes)
    notification["format"] = payload.entity_format
    notification["endpoint"] = {"uri": subscription.url, "accept": "application/json"}
    failing = subscription.state == "failed" or subscription.failing_since is not None
    notification["status"] = "failed" if failing else "ok"
    if summary.attempts:
        notification["timesSent"] = summary.attempts
    if summary.failed:
        notification["timesFailed"] = summary.failed
    for member, moment in (
        ("lastNotification", summary.last_attempt),
        ("lastSuccess", summary.last_success),
        ("lastFailure", summary.last_failure),
    ):
        if moment is not None:
            notification[member] = instant(moment)
    body["notification"] = notification
    return body


class Context:
    """What every route needs: the caller, its tenant and the hub's subscription store."""

    def __init__(self, request: Request, caller: Caller, services: Services) -> None:
        self.request = request
        self.caller = caller
        self.engine = services.engine
        self.store = SubscriptionStore(services.engine, request.app.state.registry, services.settings)
        self.tenant = tenant_of(request)

    @classmethod
    async def of(cls, request: Request) -> Context:
        caller, services = await authenticated(request)
        return cls(request, caller, services)

    @property
    def admin(self) -> bool:
        return self.caller.has_scope("admin")

    async def owned(self, raw_id: str) -> Subscription:
        """The caller's NGSI-LD subscription (by URN or bare id) in the tenant; 404 for anything else."""
        try:
            found = await self.store.owned(
                raw_id.removeprefix(SUBSCRIPTION_URN), self.caller.client_id, admin=self.admin
            )
        except NotFound:
            raise NgsiError(404, "ResourceNotFound", f"no subscription {raw_id}") from None
        if found.payload.entity_format is None:
            raise NgsiError(
                404, "ResourceNotFound", f"{raw_id} is not an NGSI-LD subscription; see /api/v1/subscriptions"
            )
        if not self.in_tenant(found):
            raise NgsiError(404, "ResourceNotFound", f"no subscription {raw_id} in tenant {self.tenant}")
        return found

    def in_tenant(self, subscription: Subscription) -> bool:
        return self.tenant is None or subscription.selection.cities == (self.tenant,)


async def _shown(ctx: Context, found: list[Subscription]) -> list[dict[str, Any]]:
    summaries = await ctx.store.delivery_summaries([s.id for s in found])
    return [with_context(ctx.request, represent(s, summaries.get(s.id, DeliverySummary()))) for s in found]


@router.post("", include_in_schema=False)
async def create(request: Request) -> Response:
    try:
        ctx = await Context.of(request)
        place = {"cities": [ctx.tenant] if ctx.tenant else []}
        order = await _order(request, await json_body(request), place, ctx.caller)
        try:
            subscription, secret = await ctx.store.create(
                ctx.caller.client_id,
                order.selection,
                "webhook",
                order.url,
                position=await EntityStore(ctx.engine).head(),  # from now on
                name=order.name,
                payload=order.payload,
                subscription_id=order.local_id,
            )
            if not order.active:
                subscription = await ctx.store.pause(subscription.id)
        except GatewayError as error:
            raise from_gateway(error) from error
        (shown,) = await _shown(ctx, [subscription])
        location = f"/ngsi-ld/v1/subscriptions/{SUBSCRIPTION_URN}{subscription.id}"
        return json_response(request, {**shown, "secret": secret}, {"Location": location}, status=201)
    except NgsiError as error:
        return error.response()


@router.get("", include_in_schema=False)
async def query(request: Request) -> Response:
    try:
        ctx = await Context.of(request)
        params = request.query_params
        limit = whole_number(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
        offset = whole_number(params.get("offset"), "offset", 0, 10_000_000)
        owner = None if ctx.admin else ctx.caller.client_id  # as /api/v1/subscriptions lists them
        everyone = await ctx.store.all(owner)
        found = [s for s in everyone if s.payload.entity_format is not None and ctx.in_tenant(s)]
        headers = {"NGSILD-Results-Count": str(len(found))} if params.get("count") == "true" else {}
        return json_response(request, await _shown(ctx, found[offset : offset + limit]), headers)
    except NgsiError as error:
        return error.response()


@router.get("/{subscription_id}", include_in_schema=False)
async def retrieve(request: Request, subscription_id: str) -> Response:
    try:
        ctx = await Context.of(request)
        (shown,) = await _shown(ctx, [await ctx.owned(subscription_id)])
        return json_response(request, shown)
    except NgsiError as error:
        return error.response()


def _merged(current: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """The subscription after a PATCH fragment: members replaced, ``notification`` and ``endpoint`` merged."""
    merged = {k: v for k, v in current.items() if k not in READ_ONLY}
    for name, value in fragment.items():
        if name in READ_ONLY:
            continue
        if name == "notification" and isinstance(value, dict):
            notification = {k: v for k, v in merged["notification"].items() if k not in READ_ONLY_NOTIFICATION}
            for key, part in value.items():
                if key == "endpoint" and isinstance(part, dict):
                    notification["endpoint"] = {**notification["endpoint"], **part}
                elif key not in READ_ONLY_NOTIFICATION:
                    notification[key] = part
            merged["notification"] = notification
        else:
            merged[name] = value
    merged["notification"] = {
        k: v for k, v in merged["notification"].items() if k not in READ_ONLY_NOTIFICATION and v is not None
    }
    return merged


@router.patch("/{subscription_id}", include_in_schema=False)
async def update(request: Request, subscription_id: str) -> Response:
    try:
        ctx = await Context.of(request)
        current = await ctx.owned(subscription_id)
        fragment = await json_body(request)
        urn = SUBSCRIPTION_URN + current.id
        if fragment.get("id", urn) != urn:
            raise _bad("a subscription's id cannot change")
        body = _merged(represent(current, DeliverySummary()), fragment)
        place = {"cities": list(current.selection.cities), "bbox": current.selection.bbox}
        order = await _order(request, body, place, ctx.caller, current)
        try:
            if (order.selection, order.url, order.payload) != (current.selection, current.url, current.payload) or (
                order.name != current.name
            ):
                await ctx.store.change(
                    current.id,
                    name=order.name if order.name != current.name else None,
                    selection=order.selection if order.selection != current.selection else None,
                    url=order.url if order.url != current.url else None,
                    payload=order.payload if order.payload != current.payload else None,
                )
            if order.active and current.state != "active":
                await ctx.store.resume(current.id)
            elif not order.active and current.state == "active":
                await ctx.store.pause(current.id)
        except GatewayError as error:
            raise from_gateway(error) from error
        return Response(status_code=204)
    except NgsiError as error:
        return error.response()


@router.delete("/{subscription_id}", include_in_schema=False)
async def delete(request: Request, subscription_id: str) -> Response:
    try:
        ctx = await Context.of(request)
        current = await ctx.owned(subscription_id)
        try:
            await ctx.store.delete(current.id)
        except GatewayError as error:
            raise from_gateway(error) from error
        return Response(status_code=204)
    except NgsiError as error:
        return error.response()
