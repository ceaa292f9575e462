"""Every schema file at a URL the hub answers, so third-party validators can resolve ``$ref`` over HTTP.

The schemas' ``$id`` values name ``https://schemas.qala.kz/``, a namespace rather than a server one can reach. The
hub serves each released file as written (references kept, not bundled) under ``<issuer>/schemas/``, with that
namespace replaced by the hub's own address, so a validator given one URL fetches the shared definitions it
refers to from the same hub:

    GET /schemas/ServiceRequest/1.1.0/schema.json      the type at a released version
    GET /schemas/common/1.0.0/core.json                shared definitions

The bundled, self-contained form stays at ``GET /api/v1/schemas/{type}``. Only the configured issuer is used,
never the request's Host header, so the served documents cannot be steered to another host.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, Request, Response

from gateway.errors import NotFound
from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR, read_json

SCHEMA_NAMESPACE = "https://schemas.qala.kz/"
MEDIA_TYPE = "application/schema+json"

router = APIRouter(tags=["schemas"])


def schema_files(registry: SchemaRegistry, common_dir: Path = MODELS_DIR / "_common") -> dict[str, bytes]:
    """Path under the namespace (``ServiceRequest/1.1.0/schema.json``) -> the document as written."""
    files: dict[str, bytes] = {}
    documents = [version.source for latest in registry.latest() for version in registry.versions(latest.type_name)]
    documents += [read_json(path) for path in sorted(common_dir.glob("*.json"))]
    for document in documents:
        schema_id = str(document.get("$id", ""))
        if schema_id.startswith(SCHEMA_NAMESPACE):
            files[schema_id.removeprefix(SCHEMA_NAMESPACE)] = orjson.dumps(document)
    return files


def rebased(files: dict[str, bytes], base: str) -> dict[str, bytes]:
    """``files`` with every reference into the namespace pointing at ``base`` instead."""
    old, new = orjson.dumps(SCHEMA_NAMESPACE)[:-1], orjson.dumps(base.rstrip("/") + "/")[:-1]
    return {path: body.replace(old, new) for path, body in files.items()}


@router.get(
    "/schemas/{path:path}",
    summary="A schema file as written, its references resolvable at this hub.",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}, 404: {"description": "No such file."}},
)
async def schema_file(path: str, request: Request) -> Response:
    served: dict[str, bytes] | None = getattr(request.app.state, "schema_files", None)
    if served is None:
        base = f"{request.app.state.settings.issuer}/schemas"
        served = rebased(schema_files(request.app.state.registry), base)
        request.app.state.schema_files = served
    body = served.get(path)
    if body is None:
        raise NotFound(f"no schema file at /schemas/{path}; GET /api/v1/schemas lists the types")
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "public, max-age=3600"})
