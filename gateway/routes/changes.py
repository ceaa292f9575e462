"""``GET /api/v1/changes``: the ordered change feed across the collections the caller may read.

Each entity appears once, at the position of its latest change; a deleted entity appears as a tombstone
(``op: delete``). A downstream system stores the ``cursor`` of the last page and resumes from it, after a crash
too: positions only grow, in commit order.

    curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8000/api/v1/changes?types=ServiceRequest&limit=500"
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from gateway.auth import CallerDep
from gateway.errors import BadRequest, InsufficientScope
from gateway.exchange import ExchangeDep, public_view
from gateway.links import request_link
from gateway.store.cursor import CursorCodec
from openapi.mandate import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["exchange"])
_FEED = {"feed": "changes"}


@router.get("/changes", summary="Changes in commit order across the collections you may read.")
async def changes(
    *,
    request: Request,
    caller: CallerDep,
    exchange: ExchangeDep,
    since: str | None = Query(None, description="The cursor of the previous page; omit to start at the beginning."),
    types: str | None = Query(None, description="Comma-separated type names (default: every type you may read)."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    registry = exchange.registry
    readable = {s.type_name: s for s in registry.latest() if caller.has_scope(f"{s.collection}:read")}
    if types:
        wanted = [name.strip() for name in types.split(",") if name.strip()]
        unknown = [name for name in wanted if not registry.has(name)]
        if unknown:
            raise BadRequest(f"unknown type(s): {', '.join(unknown)}")
        denied = [name for name in wanted if name not in readable]
        if denied:
            raise InsufficientScope(f"{registry.get(denied[0]).collection}:read")
        readable = {name: readable[name] for name in wanted}
    codec = CursorCodec(exchange.services.settings.secret)
    position = int(codec.decode(since, _FEED)) if since else 0
    rows = await exchange.store.changes(position, [s.collection for s in readable.values()], limit)
    items = []
    for row in rows:
        if not caller.may_read(row.city):
            continue  # narrowed with --read-city: the position still advances past it
        schema = readable[row.type]
        items.append(
            {
                "seq": row.seq,
                "op": "delete" if row.deleted else "upsert",
                "id": row.id,
                "type": row.type,
                "collection": row.collection,
                "city": row.city,
                "version": row.version,
                "receivedAt": datetime.fromtimestamp(row.received_at, UTC).isoformat(),
                "entity": None if row.payload is None else public_view(schema, row.payload, caller),
            }
        )
    last = rows[-1].seq if rows else position
    cursor = codec.encode(str(last), _FEED)
    params = {"since": cursor, "limit": str(limit), **({"types": types} if types else {})}
    next_url = request_link(request, params) if len(rows) == limit else None
    return {"changes": items, "cursor": cursor, "next": next_url}
