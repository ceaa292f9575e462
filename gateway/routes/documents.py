"""The hub's OpenAPI documents, built from the same mandate vendors implement.

* ``GET /openapi.json``: the whole hub (OAuth, admin, batch, changes, registry) with every collection's mandated
  operations under ``/api/v1``.
* ``GET /api/v1/openapi.json``: the hub seen as a module whose base URL is ``/api/v1``: exactly the mandate's
  paths for every collection, so the conformance suite checks the hub as it checks any vendor module.

The collection routes are generated from the registry and hidden from FastAPI's own document; their documentation
comes from :func:`openapi.mandate.mandate_document`, so the hub cannot drift from the mandate.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi

from gateway.routes.patch import document_patch
from openapi.mandate import MANDATE_VERSION, mandate_document
from schemas import SchemaRegistry

PREFIX = "/api/v1"
router = APIRouter(tags=["discovery"])


def _merge_mandates(registry: SchemaRegistry, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {"schemas": {}, "parameters": {}, "responses": {}}
    scopes: dict[str, str] = {}
    security_scheme: dict[str, Any] = {}
    for schema in registry.latest():
        doc = mandate_document(schema, registry.shared)
        for path, item in doc["paths"].items():
            if path != "/openapi.json":
                paths[prefix + path] = item
        for kind, values in components.items():
            values.update(doc["components"][kind])
        security_scheme = doc["components"]["securitySchemes"]["oauth2"]
        scopes.update(security_scheme["flows"]["clientCredentials"]["scopes"])
    scheme = {
        **security_scheme,
        "flows": {
            "clientCredentials": {
                **security_scheme["flows"]["clientCredentials"],
                "scopes": dict(sorted(scopes.items())),
            }
        },
    }
    return paths, {**components, "securitySchemes": {"oauth2": scheme}}


def module_document(registry: SchemaRegistry, token_url: str) -> dict[str, Any]:
    """The hub as a module at ``/api/v1``: the union of every collection's mandate."""
    paths, components = _merge_mandates(registry, "")
    components["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] = token_url
    paths["/openapi.json"] = {
        "get": {
            "operationId": "get-openapi",
            "tags": ["discovery"],
            "security": [],
            "summary": "This document.",
            "responses": {
                "200": {
                    "description": "An OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Qala hub: exchange API",
            "version": MANDATE_VERSION,
            "x-mandate-version": MANDATE_VERSION,
            "x-profiles": [s.collection for s in registry.latest()],
        },
        "servers": [{"url": PREFIX}],
        "security": [{"oauth2": []}],
        "paths": paths,
        "components": components,
    }


def ndjson_body(description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body as NDJSON itself (FastAPI cannot see such a body)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string", "contentMediaType": "application/x-ndjson"}}
            },
        }
    }


CLIENT_AUTH_SCHEME = {
    "type": "http",
    "scheme": "basic",
    "description": "OAuth client authentication at the token, introspection and revocation endpoints: HTTP Basic "
    "with the client id and secret (client_secret_basic). client_secret_post and private_key_jwt (RFC 7523) send "
    "their credentials in the form body instead.",
}
ADMIN_SCOPE = "Administer members, clients, keys and the audit log."
CLIENT_AUTHENTICATED = ("/oauth/token", "/oauth/introspect", "/oauth/revoke")


def _declare_public_security(document: dict[str, Any]) -> None:
    """Operations that need no bearer token say so (``security: []``), and the OAuth endpoints name the client
    authentication they take; FastAPI has already declared ``oauth2`` on every operation that needs a token."""
    for path, item in document["paths"].items():
        for operation in item.values():
            if not isinstance(operation, dict) or "security" in operation:
                continue
            operation["security"] = [{"clientSecretBasic": []}, {}] if path in CLIENT_AUTHENTICATED else []


def hub_document(
    app: FastAPI, registry: SchemaRegistry, token_url: str, public_url: str | None = None
) -> dict[str, Any]:
    """FastAPI's document of the hub's own routes, plus every collection's mandated operations.

    ``public_url`` (the configured issuer, never the request's Host header) becomes the ``servers`` entry."""
    document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    _declare_public_security(document)
    if public_url:
        document["servers"] = [{"url": public_url}]
    paths, components = _merge_mandates(registry, PREFIX)
    document_patch(paths, PREFIX)  # the hub's PATCH (JSON Merge Patch): beyond the mandate, so here only
    components["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] = token_url
    document["paths"] = {**document.get("paths", {}), **paths}
    own = document.setdefault("components", {})
    for kind, values in components.items():
        own.setdefault(kind, {}).update(values)
    own["securitySchemes"]["clientSecretBasic"] = CLIENT_AUTH_SCHEME
    own["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]["admin"] = ADMIN_SCOPE
    return document


def install(app: FastAPI, registry: SchemaRegistry, token_url: str, public_url: str | None = None) -> None:
    """Serve :func:`hub_document` at ``/openapi.json`` (built once, on first request)."""
    cache: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        if "doc" not in cache:
            cache["doc"] = hub_document(app, registry, token_url, public_url)
        return cache["doc"]

    app.openapi = openapi  # type: ignore[method-assign]


@router.get(PREFIX + "/openapi.json", include_in_schema=False)
async def module_openapi(request: Request) -> dict[str, Any]:
    cached: dict[str, Any] | None = getattr(request.app.state, "module_openapi", None)
    if cached is None:
        settings = request.app.state.settings
        cached = module_document(request.app.state.registry, settings.token_endpoint)
        request.app.state.module_openapi = cached
    return dict(cached)
