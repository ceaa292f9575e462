"""Discovery: the module serves an OpenAPI document with every mandated operation, compatibly.

The mandated operations and list parameters are read from the profile's mandate document, so the tests follow
the mandate when it changes. A module may publish its paths under a base path (the hub serves ``/api/v1/...``):
a served path matches a mandated one when it ends with it.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.checks.common import describe
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckFailed, CheckSkipped, expect
from openapi.mandate import mandate_document
from schemas import SchemaVersion

METHODS = ("get", "put", "post", "delete", "patch")
OPENAPI_FIELDS = frozenset(
    {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components", "security", "tags",
     "externalDocs"}
)  # fmt: skip


def served_document(ctx: RunContext) -> JsonObject:
    if ctx.openapi_exchange is not None and ctx.openapi_exchange not in ctx.client.recording:
        ctx.client.recording.append(ctx.openapi_exchange)
    response = ctx.openapi_response
    if response is None or response.status_code != 200:
        raise CheckSkipped("the module's OpenAPI document could not be fetched (see QM-DISC-001)")
    try:
        document = response.json()
    except ValueError:
        raise CheckSkipped("the module's OpenAPI document is not JSON (see QM-DISC-001)") from None
    if not isinstance(document, dict):
        raise CheckSkipped("the module's OpenAPI document is not an object (see QM-DISC-001)")
    return document


def _find_path(document: JsonObject, mandated: str) -> JsonObject | None:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return None
    if isinstance(paths.get(mandated), dict):
        return dict(paths[mandated])
    for served, item in sorted(paths.items()):
        # the path template's parameter name is the module's own business: compare with it normalised
        normalised = served.replace("{" + served.rsplit("{", 1)[-1], "{id}") if "{" in served else served
        if normalised.endswith(mandated) and isinstance(item, dict):
            return dict(item)
    return None


def mandated_operations(profile: SchemaVersion) -> list[str]:
    document = mandate_document(profile)
    return [
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in METHODS if method in item
    ]


@check("QM-DISC-001", "openapi-document")
def openapi_document(ctx: RunContext, param: str) -> str:
    if ctx.openapi_exchange is not None:
        ctx.client.recording.append(ctx.openapi_exchange)
    response = ctx.openapi_response
    if response is None:
        raise CheckFailed("GET /openapi.json got no answer", expected="200 with an OpenAPI 3.x JSON document")
    expect(response.status_code == 200, describe(response), expected="200 with an OpenAPI 3.x JSON document")
    try:
        document: Any = response.json()
    except ValueError:
        raise CheckFailed("/openapi.json is not JSON", expected="an OpenAPI 3.x JSON document") from None
    version = document.get("openapi") if isinstance(document, dict) else None
    expect(
        isinstance(version, str) and version.startswith("3."),
        f"/openapi.json declares openapi {version!r}",
        expected="openapi: 3.x",
    )
    unknown = sorted(key for key in document if key not in OPENAPI_FIELDS and not str(key).startswith("x-"))
    expect(
        not unknown,
        f"/openapi.json has members OpenAPI does not define: {', '.join(unknown)}",
        expected="the fixed fields of an OpenAPI object, or x- extensions",
    )
    servers = document.get("servers", [])
    expect(
        isinstance(servers, list) and all(isinstance(s, dict) and isinstance(s.get("url"), str) for s in servers),
        f"/openapi.json servers is {json.dumps(servers)[:200]}",
        expected="servers: a list of Server Objects, each with its url (OpenAPI 3.1 §4.8.5)",
    )
    return f"OpenAPI {version}, {len(ctx.openapi_body)} bytes"


@check("QM-DISC-002", "operation", params=mandated_operations)
def operation(ctx: RunContext, param: str) -> str:
    method, path = param.split(" ", 1)
    item = _find_path(served_document(ctx), path)
    expect(item is not None, f"the document has no path ending in {path}", expected=f"{method} {path}")
    assert item is not None
    expect(method.lower() in item, f"{path} has no {method} operation", expected=f"{method} {path}")
    return f"{method} {path} is declared"


@check("QM-DISC-003", "list-parameters")
def list_parameters(ctx: RunContext, param: str) -> str:
    document = served_document(ctx)
    mandated = mandate_document(ctx.profile)
    wanted = {_parameter_name(mandated, spec) for spec in mandated["paths"][ctx.collection_path]["get"]["parameters"]}
    item = _find_path(document, ctx.collection_path) or {}
    operation = item.get("get") if isinstance(item.get("get"), dict) else {}
    assert isinstance(operation, dict)
    declared = {
        _parameter_name(document, spec) for spec in [*item.get("parameters", []), *operation.get("parameters", [])]
    }
    missing = sorted(wanted - declared)
    expect(not missing, f"the list operation does not declare {', '.join(missing)}", expected=", ".join(sorted(wanted)))
    return f"{len(wanted)} parameters declared"


def _parameter_name(document: JsonObject, spec: Any) -> str:
    if isinstance(spec, dict) and "$ref" in spec:
        name = str(spec["$ref"]).rsplit("/", 1)[-1]
        spec = document.get("components", {}).get("parameters", {}).get(name, {})
    return str(spec.get("name", "")) if isinstance(spec, dict) else ""


@check("QM-DISC-004", "oauth2-security")
def oauth2_security(ctx: RunContext, param: str) -> str:
    document = served_document(ctx)
    schemes = document.get("components", {}).get("securitySchemes", {})
    flows = [
        spec.get("flows", {}) for spec in schemes.values() if isinstance(spec, dict) and spec.get("type") == "oauth2"
    ]
    expect(
        any("clientCredentials" in flow for flow in flows),
        "no oauth2 security scheme with a clientCredentials flow",
        expected="components.securitySchemes with type oauth2 and flows.clientCredentials",
    )
    return "oauth2 client credentials declared"


# -- the schemas the module publishes are the mandate's, neither looser nor stricter ------------------------------

ANNOTATIONS = frozenset({"description", "title", "examples", "example", "$comment", "deprecated", "x-schema-id"})
MAX_DEPTH = 64


def resolve(document: JsonObject, node: Any, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (recursion stops at a reference cycle)."""
    if isinstance(node, list):
        return [resolve(document, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in seen and len(seen) < MAX_DEPTH:
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        merged = {**target, **siblings} if isinstance(target, dict) else node
        return resolve(document, merged, (*seen, ref))
    return {key: resolve(document, value, seen) for key, value in node.items() if key not in ANNOTATIONS}


def first_difference(mandated: Any, served: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first place ``served`` differs from ``mandated``, with how; None when equal."""
    if isinstance(mandated, dict) and isinstance(served, dict):
        for key in sorted(set(mandated) | set(served)):
            where = f"{pointer}/{key}"
            if key not in served:
                return f"{where} is missing (the mandate has {json_text(mandated[key])})"
            if key not in mandated:
                return f"{where} is not in the mandate (the module adds {json_text(served[key])})"
            found = first_difference(mandated[key], served[key], where)
            if found:
                return found
        return None
    if isinstance(mandated, list) and isinstance(served, list) and len(mandated) == len(served):
        for index, (left, right) in enumerate(zip(mandated, served, strict=True)):
            found = first_difference(left, right, f"{pointer}/{index}")
            if found:
                return found
        return None
    if mandated != served:
        return f"{pointer or '/'} is {json_text(served)}, the mandate says {json_text(mandated)}"
    return None


def json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _body_schemas(document: JsonObject, item: JsonObject, method: str) -> dict[str, Any]:
    """The request and success-response schemas of one operation, resolved, by where they are."""
    operation = item.get(method)
    if not isinstance(operation, dict):
        return {}
    out: dict[str, Any] = {}
    body = resolve(document, operation.get("requestBody", {}))
    if isinstance(body, dict) and "schema" in body.get("content", {}).get("application/json", {}):
        out["requestBody"] = body["content"]["application/json"]["schema"]
    for status, raw in (operation.get("responses") or {}).items():
        if not str(status).startswith("2"):
            continue
        response = resolve(document, raw)
        if isinstance(response, dict) and "schema" in response.get("content", {}).get("application/json", {}):
            out[f"responses/{status}"] = response["content"]["application/json"]["schema"]
    return out


def _schema_params(profile: SchemaVersion) -> list[str]:
    document = mandate_document(profile)
    out = []
    for path, item in document["paths"].items():
        if path == "/openapi.json":
            continue
        for method in METHODS:
            if method in item and _body_schemas(document, item, method):
                out.append(f"{method.upper()} {path}")
    return out


@check("QM-DISC-005", "schemas", params=_schema_params)
def schemas_match(ctx: RunContext, param: str) -> str:
    """The entity and page schemas the module publishes for an operation are the mandate's canonical ones."""
    method, path = param.split(" ", 1)
    mandated = _body_schemas(ctx.mandate, ctx.mandate["paths"][path], method.lower())
    document = served_document(ctx)
    item = _find_path(document, path)
    if item is None or method.lower() not in item:
        raise CheckFailed(f"{param} is not declared", expected=f"{param} (see QM-DISC-002)", cause="QM-DISC-002")
    served = _body_schemas(document, item, method.lower())
    for where, schema in mandated.items():
        expect(where in served, f"{param} publishes no {where} schema", expected="the canonical schema")
        difference = first_difference(schema, served[where])
        expect(
            difference is None,
            f"{param} {where}: the published schema differs from the mandate's: {difference}",
            expected=f"the canonical {ctx.profile.type_name} {ctx.profile.version} schema, unchanged",
        )
    return f"{param}: {', '.join(sorted(mandated))} as mandated"
