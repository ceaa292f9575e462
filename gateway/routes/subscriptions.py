"""``/api/v1/subscriptions``: a client's standing orders for changes, delivered by webhook or event stream.

    curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
         -d '{"types": ["ServiceRequest"], "cities": ["astana"], "filters": {"status": "open"},
              "delivery": {"kind": "webhook", "url": "https://utility.example.kz/qala"}}' \\
         http://127.0.0.1:8000/api/v1/subscriptions

A subscription belongs to the client that made it (an ``admin`` client sees and manages every one). Making one
needs ``<collection>:read`` for each selected type; the webhook secret is in the 201 answer only, and
``POST .../rotate-secret`` replaces it. ``pause``, ``resume`` and ``replay`` (from any change-feed cursor) are
actions on the subscription; ``GET .../deliveries`` is its delivery log.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from gateway.auth import CallerDep
from gateway.errors import BadRequest
from gateway.services import ServicesDep
from gateway.store.cursor import CursorCodec
from gateway.store.entities import EntityStore
from gateway.subscriptions.selection import Selection, check_readable, invalid
from gateway.subscriptions.store import FEED_QUERY, Delivery, Subscription, SubscriptionStore
from gateway.subscriptions.targets import check_target

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])
_FIELDS = frozenset({"name", "types", "cities", "filters", "bbox", "delivery", "since"})


class Context:
    """What every subscription route needs: the store, the cursor codec and the caller."""

    def __init__(self, request: Request, services: ServicesDep, caller: CallerDep) -> None:
        self.settings = services.settings
        self.engine = services.engine
        self.registry = request.app.state.registry
        self.store = SubscriptionStore(services.engine, self.registry, services.settings)
        self.codec = CursorCodec(services.settings.secret)
        self.caller = caller

    async def owned(self, subscription_id: str) -> Subscription:
        """The caller's subscription (any, for admin); 404 for another client's, as for a missing one."""
        return await self.store.owned(subscription_id, self.caller.client_id, admin=self.caller.has_scope("admin"))

    def position(self, cursor: Any) -> int:
        if cursor is None:
            return 0
        if not isinstance(cursor, str):
            raise invalid("/since", "type", "since must be a change-feed cursor (a string) or null")
        return int(self.codec.decode(cursor, FEED_QUERY))

    def json(self, subscription: Subscription, **extra: Any) -> dict[str, Any]:
        return {**subscription.as_json(self.codec), **extra}


ContextDep = Annotated[Context, Depends(Context)]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid(f"/{unknown[0]}", "additionalProperties", f"unknown field(s): {', '.join(unknown)}")
    return body


async def _delivery(ctx: Context, raw: Any) -> tuple[Delivery, str | None]:
    if not isinstance(raw, dict) or raw.get("kind") not in ("webhook", "stream"):
        raise invalid("/delivery", "required", 'delivery must be {"kind": "webhook", "url": ...} or {"kind": "stream"}')
    if raw["kind"] == "stream":
        return "stream", None
    url = raw.get("url")
    if not isinstance(url, str):
        raise invalid("/delivery/url", "required", "a webhook delivery needs a url")
    return "webhook", await check_target(url, ctx.settings)


@router.post("", status_code=201, summary="Subscribe to changes (webhook or event stream).")
async def create(request: Request, ctx: ContextDep) -> JSONResponse:
    body = await _body(request)
    selection = Selection.parse(body, ctx.registry)
    check_readable(selection, ctx.caller)
    kind, url = await _delivery(ctx, body.get("delivery"))
    if "since" in body:
        position = ctx.position(body["since"])
    else:
        position = await EntityStore(ctx.engine).head()  # from now on
    name = body.get("name")
    subscription, secret = await ctx.store.create(
        ctx.caller.client_id, selection, kind, url, position=position, name=name if isinstance(name, str) else None
    )
    extra = {"secret": secret} if secret else {}
    location = f"{request.url}/{subscription.id}"
    return JSONResponse(ctx.json(subscription, **extra), status_code=201, headers={"Location": location})


@router.get("", summary="Your subscriptions.")
async def list_subscriptions(ctx: ContextDep) -> dict[str, Any]:
    owner = None if ctx.caller.has_scope("admin") else ctx.caller.client_id
    return {"items": [ctx.json(s) for s in await ctx.store.all(owner)]}


@router.get("/{subscription_id}", summary="One subscription, with its position and state.")
async def get(subscription_id: str, ctx: ContextDep) -> dict[str, Any]:
    return ctx.json(await ctx.owned(subscription_id))


@router.patch("/{subscription_id}", summary="Change the name, selection or webhook URL.")
async def patch(subscription_id: str, request: Request, ctx: ContextDep) -> dict[str, Any]:
    current = await ctx.owned(subscription_id)
    body = await _body(request)
    selection = None
    if {"types", "cities", "filters", "bbox"} & set(body):
        merged = {**current.selection.as_json(), **{k: v for k, v in body.items() if k != "delivery"}}
        selection = Selection.parse(merged, ctx.registry)
        check_readable(selection, ctx.caller)
    url = None
    if "delivery" in body:
        kind, url = await _delivery(ctx, body["delivery"])
        if kind != current.delivery:
            raise invalid("/delivery/kind", "const", "a subscription's delivery kind cannot change; make a new one")
    name = body.get("name")
    updated = await ctx.store.change(
        subscription_id, name=name if isinstance(name, str) else None, selection=selection, url=url
    )
    return ctx.json(updated)


@router.delete("/{subscription_id}", status_code=204, summary="Unsubscribe.")
async def delete(subscription_id: str, ctx: ContextDep) -> Response:
    await ctx.owned(subscription_id)
    await ctx.store.delete(subscription_id)
    return Response(status_code=204)


@router.post("/{subscription_id}/pause", summary="Stop delivering until resumed.")
async def pause(subscription_id: str, ctx: ContextDep) -> dict[str, Any]:
    await ctx.owned(subscription_id)
    return ctx.json(await ctx.store.pause(subscription_id))


@router.post("/{subscription_id}/resume", summary="Deliver again (also after the subscription failed).")
async def resume(subscription_id: str, ctx: ContextDep) -> dict[str, Any]:
    await ctx.owned(subscription_id)
    return ctx.json(await ctx.store.resume(subscription_id))


@router.post("/{subscription_id}/replay", summary="Deliver again every change after a change-feed cursor.")
async def replay(subscription_id: str, request: Request, ctx: ContextDep) -> dict[str, Any]:
    await ctx.owned(subscription_id)
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise BadRequest('the body must be {"since": "<cursor>"} or {"since": null} for the start of the feed')
    return ctx.json(await ctx.store.replay(subscription_id, ctx.position(body.get("since"))))


@router.post("/{subscription_id}/rotate-secret", summary="A new webhook secret (the old one signs for a while).")
async def rotate_secret(subscription_id: str, ctx: ContextDep) -> dict[str, Any]:
    await ctx.owned(subscription_id)
    secret = await ctx.store.rotate_secret(subscription_id)
    return {"id": subscription_id, "secret": secret, "previousSecretValidFor": ctx.settings.secret_rotation_overlap}


@router.get("/{subscription_id}/deliveries", summary="The delivery log: attempts, status, latency.")
async def deliveries(subscription_id: str, ctx: ContextDep, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    await ctx.owned(subscription_id)
    return {"items": await ctx.store.deliveries(subscription_id, limit)}
