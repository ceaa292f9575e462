"""The hub's OpenAPI documents contain every mandated operation, compatibly, and are valid OpenAPI 3.1."""

from __future__ import annotations

import httpx
import pytest
import yaml
from openapi_spec_validator import validate

from openapi.build import MANDATE_DIR
from schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_hub_documents_carry_every_mandated_operation(http: httpx.AsyncClient) -> None:
    hub = (await http.get("/openapi.json")).json()
    module = (await http.get("/api/v1/openapi.json")).json()
    validate(hub)
    validate(module)
    assert module["servers"] == [{"url": "/api/v1"}]
    for schema in REGISTRY.latest():
        mandate = yaml.safe_load((MANDATE_DIR / f"{schema.collection}.yaml").read_text(encoding="utf-8"))
        for path, item in mandate["paths"].items():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                in_module = module["paths"][path][method]
                assert in_module["operationId"] == operation["operationId"]
                assert in_module.get("parameters") == operation.get("parameters")
                assert in_module.get("requestBody") == operation.get("requestBody")
                if path != "/openapi.json":
                    assert hub["paths"]["/api/v1" + path][method] == operation
        for name, component in mandate["components"]["schemas"].items():
            assert module["components"]["schemas"][name] == component
    assert {"/oauth/token", "/api/v1/batch", "/api/v1/changes", "/api/v1/schemas"} <= set(hub["paths"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_schema_registry_is_public(http: httpx.AsyncClient) -> None:
    listing = (await http.get("/api/v1/schemas")).json()["types"]
    assert {t["collection"] for t in listing} == {s.collection for s in REGISTRY.latest()}
    service_requests = next(t for t in listing if t["type"] == "ServiceRequest")
    assert service_requests["versions"][:2] == ["1.0.0", "1.1.0"]
    old = (await http.get("/api/v1/schemas/ServiceRequest?version=1.0.0")).json()
    assert old["x-version"] == "1.0.0"
    missing = await http.get("/api/v1/schemas/ServiceRequest?version=9.9.9")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
