"""The public schema registry: ``GET /api/v1/schemas`` and ``GET /api/v1/schemas/{type}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from gateway.errors import NotFound
from gateway.exchange import ExchangeDep
from gateway.links import request_link
from schemas import SchemaError

router = APIRouter(prefix="/api/v1", tags=["schemas"])


@router.get("/schemas", summary="Every canonical type with its collection and released versions.")
async def list_schemas(request: Request, exchange: ExchangeDep) -> dict[str, Any]:
    registry = exchange.registry
    return {
        "types": [
            {
                "type": s.type_name,
                "collection": s.collection,
                "version": s.version,
                "id": s.schema_id,
                "versions": [v.version for v in registry.versions(s.type_name)],
                "personalFields": sorted(s.personal_fields),
                "href": request_link(request, path=request.app.url_path_for("get_schema", type_name=s.type_name)),
            }
            for s in registry.latest()
        ]
    }


@router.get("/schemas/{type_name}", summary="A canonical type's self-contained JSON Schema.")
async def get_schema(
    type_name: str,
    exchange: ExchangeDep,
    version: str | None = Query(None, description="A released version; the latest by default."),
) -> dict[str, Any]:
    try:
        return exchange.registry.get(type_name, version).document
    except SchemaError as exc:
        raise NotFound(str(exc)) from exc
