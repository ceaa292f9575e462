"""Partial updates that cannot erase what the writer cannot see.

Two rules protect personal fields from writers that may not read them (no ``<collection>:read-personal``, or an
entity of another city):

* **PUT keeps unseen fields.** Such a writer GETs the entity without its personal fields; when it PUTs it back,
  every personal field it left out is carried over from the stored entity (:func:`keep_unseen`). It may still
  *set* a personal field (a write-only value), but leaving one out never erases it. The batch applies the same
  rule line by line. A writer that may read the personal fields replaces the entity exactly as sent.
* **PATCH** ``/api/v1/<collection>/{id}`` takes a JSON Merge Patch (RFC 7396, ``application/merge-patch+json``):
  members set, ``null`` removes, everything else kept. ``If-Match`` is honoured; without it the patch applies to
  the version it read, and a concurrent change answers 412 rather than being overwritten.

    curl -X PATCH -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/merge-patch+json" \\
         -H 'If-Match: "3"' -d '{"status": "closed"}' \\
         http://127.0.0.1:8000/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:SR-1

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 5}, "e": [1]})
    {'b': {'c': 5, 'd': 3}, 'e': [1]}
"""

# No ``from __future__ import annotations``: FastAPI reads the route's annotations built inside a function.
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.auth import Caller, require_scope
from gateway.errors import BadRequest, NotFound
from gateway.exchange import (
    ExchangeDep,
    UnsupportedMediaType,
    audit_record,
    mark_audited,
    public_view,
    publisher_of,
    validated,
)
from gateway.store.records import JsonObject
from schemas import SchemaVersion

MERGE_PATCH = "application/merge-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2, ``MergePatch(Target, Patch)``; the inputs are not changed."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def keep_unseen(schema: SchemaVersion, caller: Caller, entity: JsonObject, current: JsonObject | None) -> JsonObject:
    """``entity`` with the personal fields ``caller`` cannot see, and left out, taken from ``current``.

    >>> from schemas import SchemaRegistry
    >>> sr = SchemaRegistry.load().get("ServiceRequest")
    >>> nobody = Caller("qc_x", None, frozenset(), ("astana",), "iss", "jti", 0)
    >>> keep_unseen(sr, nobody, {"city": "astana"}, {"city": "astana", "contactName": "Aigerim"})["contactName"]
    'Aigerim'
    """
    if current is None or not schema.personal_fields:
        return entity
    if caller.may_read_personal(schema.collection, str(current.get("city"))):
        return entity  # it saw them, so leaving one out is deliberate
    kept = {name: current[name] for name in schema.personal_fields if name in current and name not in entity}
    return {**entity, **kept} if kept else entity


def add_patch_route(router: APIRouter, schema: SchemaVersion, prefix: str) -> None:
    """``PATCH {prefix}/<collection>/{entity_id}`` for ``schema``'s collection."""
    collection = schema.collection
    write = Annotated[Caller, Depends(require_scope(f"{collection}:write"))]

    async def patch_entity(entity_id: str, request: Request, caller: write, exchange: ExchangeDep) -> JSONResponse:
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media != MERGE_PATCH:
            raise UnsupportedMediaType(f"send a JSON Merge Patch as {MERGE_PATCH}, not {media or 'no Content-Type'}")
        try:
            patch = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc.msg}") from exc
        if not isinstance(patch, dict):
            raise BadRequest("a merge patch of an entity must be a JSON object")
        current = await exchange.store.get(entity_id)
        if current is None or current.collection != collection or current.payload is None:
            raise NotFound(f"no {schema.type_name} {entity_id}")
        caller.check_city(current.city)
        entity = merge_patch(current.payload, patch)
        if entity.get("id") != entity_id:
            raise BadRequest("a patch may not change or remove the id")
        if entity.get("type") != schema.type_name:
            raise BadRequest("a patch may not change or remove the type")
        validated(schema, entity)
        caller.check_city(entity["city"])
        if_match = request.headers.get("if-match") or current.etag  # never overwrite a change made meanwhile
        record = audit_record(request, caller, "entity.patched", resource=entity_id, status=200)
        stored, _ = await exchange.store.put(entity, schema, publisher_of(caller), if_match, record)
        mark_audited(request)
        assert stored.payload is not None
        return JSONResponse(public_view(schema, stored.payload, caller), headers={"ETag": stored.etag})

    router.add_api_route(
        f"/{collection}/{{entity_id:path}}",
        patch_entity,
        methods=["PATCH"],
        name=f"patch-{collection}",
        include_in_schema=False,  # documented by document_patch, next to the mandate's operations
    )


def document_patch(paths: dict[str, Any], prefix: str) -> None:
    """Add the PATCH operation to every collection item path of the hub's OpenAPI document (in place)."""
    for path, item in list(paths.items()):
        put = item.get("put") if path.startswith(prefix) and path.endswith("/{id}") else None
        if put is None or "patch" in item:
            continue
        body_schema = put["requestBody"]["content"]["application/json"]["schema"]
        responses = {code: answer for code, answer in put["responses"].items() if code != "201"}
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
        item["patch"] = {
            **put,
            "operationId": put["operationId"].replace("put-", "patch-", 1),
            "summary": "Change some fields with a JSON Merge Patch (RFC 7396); honours If-Match.",
            "requestBody": {
                "required": True,
                "content": {MERGE_PATCH: {"schema": {"type": "object", "x-merge-patch-of": body_schema}}},
            },
            "responses": responses,
        }
