"""The open-API mandate: one OpenAPI 3.1 document per collection, generated from the canonical schemas.

A vendor module that serves a collection implements exactly these paths, relative to its base URL, secured
by OAuth 2.0 client credentials, answering errors as RFC 9457 problem details. The documents are generated,
checked in as ``openapi/<collection>.yaml``, and a test fails when they drift from what this module builds.

    >>> from schemas import SchemaRegistry
    >>> doc = mandate_document(SchemaRegistry.load().get("service-requests"))
    >>> sorted(doc["paths"])
    ['/openapi.json', '/service-requests', '/service-requests/{id}']
"""

from __future__ import annotations

import copy
from typing import Any

from schemas import SchemaRegistry, SchemaVersion
from schemas.bundle import inline_refs

JsonObject = dict[str, Any]

MANDATE_VERSION = "1.0.0"
"""Version of the mandate itself (paths, parameters, security, error shape); schemas carry their own."""

PROBLEM_TYPE_BASE = "https://qala.kz/problems/"
COMPONENT_PREFIX = "#/components/schemas/"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def scopes_for(collection: str) -> dict[str, str]:
    return {
        f"{collection}:read": f"Read {collection} (personal fields removed).",
        f"{collection}:write": f"Create, replace and delete {collection} of the client's cities.",
        f"{collection}:read-personal": f"Read {collection} including fields marked x-personal.",
    }


def _problem_schemas() -> dict[str, JsonObject]:
    issue = {
        "type": "object",
        "properties": {
            "pointer": {"type": "string", "description": "JSON pointer into the request body."},
            "keyword": {"type": "string", "description": "The JSON Schema keyword (or x- rule) that failed."},
            "message": {"type": "string"},
        },
        "required": ["pointer", "keyword", "message"],
    }
    problem = {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string", "description": "A stable URI identifying the problem type."},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": COMPONENT_PREFIX + "ValidationIssue"}},
        },
        "required": ["type", "title", "status"],
    }
    return {"ValidationIssue": issue, "Problem": problem}


def _problem_response(description: str, headers: JsonObject | None = None) -> JsonObject:
    response: JsonObject = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": COMPONENT_PREFIX + "Problem"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _responses() -> dict[str, JsonObject]:
    unauthorized_headers = {
        "WWW-Authenticate": {"description": "Bearer challenge (RFC 6750).", "schema": {"type": "string"}}
    }
    return {
        "BadRequest": _problem_response("The request is malformed (parameters, cursor, JSON)."),
        "Unauthorized": _problem_response("No token, or the token is invalid or expired.", unauthorized_headers),
        "Forbidden": _problem_response("The token lacks the scope, or the client may not touch this city."),
        "NotFound": _problem_response("No entity with that id."),
        "Conflict": _problem_response("An entity with that id exists already."),
        "PreconditionFailed": _problem_response("If-Match does not match the current ETag."),
        "PayloadTooLarge": _problem_response("The body is larger than the module accepts."),
        "UnsupportedMediaType": _problem_response("The body is not application/json."),
        "Unprocessable": _problem_response(
            "The entity does not conform to its canonical schema; `errors` lists every error with its JSON pointer."
        ),
        "TooManyRequests": _problem_response(
            "Rate limit exceeded.",
            {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 0}}},
        ),
    }


def _parameters(version: SchemaVersion) -> tuple[dict[str, JsonObject], list[JsonObject]]:
    """Reusable parameters, and the list operation's references to them (filters come from the schema)."""
    string = {"type": "string"}
    params: dict[str, JsonObject] = {
        "EntityId": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": string,
            "description": "The entity's URN, percent-encoded.",
        },
        "City": {
            "name": "city",
            "in": "query",
            "schema": {"$ref": COMPONENT_PREFIX + "CityCode"},
            "description": "Only entities of this city.",
        },
        "UpdatedSince": {
            "name": "updatedSince",
            "in": "query",
            "schema": {"$ref": COMPONENT_PREFIX + "DateTime"},
            "description": "Only entities whose dateModified is at or after this instant.",
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "description": f"Page size; at most {MAX_LIMIT}.",
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "schema": string,
            "description": "Opaque keyset cursor taken from the previous page's `next` link.",
        },
        "Bbox": {
            "name": "bbox",
            "in": "query",
            "schema": {"type": "string", "pattern": r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$"},
            "description": (
                "minLon,minLat,maxLon,maxLat: only entities whose location's bounding box intersects this box "
                "(for a point: lies inside it)."
            ),
        },
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "schema": string,
            "description": "Apply only if the entity's current ETag matches.",
        },
    }
    refs: list[JsonObject] = [
        {"$ref": f"#/components/parameters/{name}"} for name in ("City", "UpdatedSince", "Bbox", "Limit", "Cursor")
    ]
    for field in version.filterable_fields:
        if field == "city":
            continue
        refs.append(
            {
                "name": field,
                "in": "query",
                "schema": {"type": "string"},
                "description": f"Only entities whose `{field}` equals this value.",
            }
        )
    return params, refs


def _operations(version: SchemaVersion, list_params: list[JsonObject]) -> dict[str, JsonObject]:
    collection, name = version.collection, version.type_name
    read, write = [{"oauth2": [f"{collection}:read"]}], [{"oauth2": [f"{collection}:write"]}]
    entity_ref = {"$ref": COMPONENT_PREFIX + name}
    entity_body = {"required": True, "content": {"application/json": {"schema": entity_ref}}}
    etag = {"ETag": {"description": "Version of the entity, for If-Match.", "schema": {"type": "string"}}}
    location = {"Location": {"description": "URL of the created entity.", "schema": {"type": "string"}}}
    err = {
        code: {"$ref": f"#/components/responses/{ref}"}
        for code, ref in (
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("429", "TooManyRequests"),
        )
    }
    entity_ok = {"content": {"application/json": {"schema": entity_ref}}, "headers": etag}
    personal = ", ".join(sorted(version.personal_fields))
    redaction = (
        f" Fields marked x-personal ({personal}) are present only for callers holding `{collection}:read-personal`."
        if personal
        else ""
    )
    return {
        f"/{collection}": {
            "get": {
                "operationId": f"list-{collection}",
                "tags": [collection],
                "security": read,
                "summary": f"List {collection} in a stable order, with keyset pagination." + redaction,
                "parameters": list_params,
                "responses": {
                    "200": {
                        "description": "One page.",
                        "content": {"application/json": {"schema": {"$ref": f"{COMPONENT_PREFIX}{name}Page"}}},
                    },
                    **err,
                },
            },
            "post": {
                "operationId": f"create-{collection}",
                "tags": [collection],
                "security": write,
                "summary": f"Create one {name}.",
                "requestBody": entity_body,
                "responses": {
                    "201": {
                        "description": "Created.",
                        "headers": {**location, **etag},
                        "content": {"application/json": {"schema": entity_ref}},
                    },
                    **err,
                    "409": {"$ref": "#/components/responses/Conflict"},
                    "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                    "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    "422": {"$ref": "#/components/responses/Unprocessable"},
                },
            },
        },
        f"/{collection}/{{id}}": {
            "parameters": [{"$ref": "#/components/parameters/EntityId"}],
            "get": {
                "operationId": f"get-{collection}",
                "tags": [collection],
                "security": read,
                "summary": f"Read one {name}." + redaction,
                "responses": {
                    "200": {"description": "The entity.", **entity_ok},
                    **err,
                    "404": {"$ref": "#/components/responses/NotFound"},
                },
            },
            "put": {
                "operationId": f"put-{collection}",
                "tags": [collection],
                "security": write,
                "summary": f"Create or replace one {name} (upsert); honours If-Match.",
                "parameters": [{"$ref": "#/components/parameters/IfMatch"}],
                "requestBody": entity_body,
                "responses": {
                    "200": {"description": "Replaced.", **entity_ok},
                    "201": {
                        "description": "Created.",
                        "headers": {**location, **etag},
                        "content": {"application/json": {"schema": entity_ref}},
                    },
                    **err,
                    "412": {"$ref": "#/components/responses/PreconditionFailed"},
                    "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                    "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    "422": {"$ref": "#/components/responses/Unprocessable"},
                },
            },
            "delete": {
                "operationId": f"delete-{collection}",
                "tags": [collection],
                "security": write,
                "summary": f"Delete one {name}.",
                "parameters": [{"$ref": "#/components/parameters/IfMatch"}],
                "responses": {
                    "204": {"description": "Deleted."},
                    **err,
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "412": {"$ref": "#/components/responses/PreconditionFailed"},
                },
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "get-openapi",
                "tags": ["discovery"],
                "security": [],
                "summary": "The module's own OpenAPI document (public).",
                "responses": {
                    "200": {
                        "description": "An OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            },
        },
    }


def entity_components(version: SchemaVersion, shared: dict[str, JsonObject]) -> dict[str, JsonObject]:
    """The entity schema and the shared definitions it uses, as OpenAPI components."""
    source = copy.deepcopy(version.source)
    schema_id = source.pop("$id")
    source.pop("$schema", None)
    source["x-schema-id"] = schema_id
    entity, defs = inline_refs(source, shared, COMPONENT_PREFIX)
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": COMPONENT_PREFIX + version.type_name}},
            "next": {"type": ["string", "null"], "description": "URL of the next page; null on the last page."},
        },
        "required": ["items", "next"],
    }
    return {version.type_name: entity, f"{version.type_name}Page": page, **dict(sorted(defs.items()))}


def mandate_document(version: SchemaVersion, shared: dict[str, JsonObject] | None = None) -> JsonObject:
    """The OpenAPI 3.1 mandate for one collection profile."""
    if shared is None:
        shared = SchemaRegistry.load().shared
    collection = version.collection
    parameters, list_params = _parameters(version)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": f"Qala open-API mandate: {collection}",
            "version": f"{MANDATE_VERSION}",
            "summary": f"The API every module serving {collection} implements, relative to its base URL.",
            "description": (
                f"Profile `{collection}` of the Qala open-API mandate {MANDATE_VERSION}. Entities are "
                f"{version.type_name} {version.version} ({version.schema_id}). Errors are RFC 9457 problem "
                "details. Access tokens are RFC 9068 JWTs from the issuer the module is configured to trust; "
                "their `cities` claim limits which cities a client may write."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "x-mandate-version": MANDATE_VERSION,
            "x-profile": collection,
            "x-schema-id": version.schema_id,
            "x-schema-version": version.version,
        },
        "servers": [
            {
                "url": "{baseUrl}",
                "variables": {
                    "baseUrl": {"default": "https://module.example.kz/api/v1", "description": "The module's base URL."}
                },
            }
        ],
        "security": [{"oauth2": [f"{collection}:read"]}],
        "tags": [{"name": collection, "description": version.description}, {"name": "discovery"}],
        "paths": _operations(version, list_params),
        "components": {
            "schemas": {**entity_components(version, shared), **_problem_schemas()},
            "parameters": parameters,
            "responses": _responses(),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": "OAuth 2.0 client credentials at the token endpoint of the trusted issuer.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "https://hub.qala.example.kz/oauth/token",
                            "scopes": scopes_for(collection),
                        }
                    },
                }
            },
        },
    }
