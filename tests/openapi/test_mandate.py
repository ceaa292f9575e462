from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from openapi.build import MANDATE_DIR, build_all, drift, spec_errors
from openapi.mandate import MANDATE_VERSION
from qala.cli import build_app
from schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load()
COLLECTIONS = [v.collection for v in REGISTRY.latest()]


def test_checked_in_documents_match_what_build_generates() -> None:
    assert drift(REGISTRY, MANDATE_DIR) == []


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_each_document_is_valid_openapi_31(collection: str) -> None:
    assert spec_errors(MANDATE_DIR / f"{collection}.yaml") == []


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_document_carries_the_exchange_paths_security_and_canonical_schema(collection: str) -> None:
    version = REGISTRY.get(collection)
    doc = yaml.safe_load((MANDATE_DIR / f"{collection}.yaml").read_text(encoding="utf-8"))
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["x-mandate-version"] == MANDATE_VERSION
    assert doc["info"]["x-schema-id"] == version.schema_id
    methods = {path: set(item) - {"parameters"} for path, item in doc["paths"].items()}
    assert methods == {
        f"/{collection}": {"get", "post"},
        f"/{collection}/{{id}}": {"get", "put", "delete"},
        "/openapi.json": {"get"},
    }
    scopes = doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]
    assert set(scopes) == {f"{collection}:read", f"{collection}:write", f"{collection}:read-personal"}
    entity = doc["components"]["schemas"][version.type_name]
    assert entity["x-schema-id"] == version.schema_id
    assert set(entity["properties"]) == set(version.document["properties"])
    post = doc["paths"][f"/{collection}"]["post"]
    assert post["security"] == [{"oauth2": [f"{collection}:write"]}]
    problem = doc["components"]["responses"]["Unprocessable"]["content"]
    assert problem == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_ref_resolves_inside_the_document() -> None:
    for name, text in build_all(REGISTRY).items():
        doc = yaml.safe_load(text)
        for ref in _refs(doc):
            assert ref.startswith("#/"), (name, ref)
            target: object = doc
            for token in ref[2:].split("/"):
                assert isinstance(target, dict), (name, ref)
                assert token in target, (name, ref)
                target = target[token]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_check_command_fails_on_drift_and_build_repairs_it(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    assert runner.invoke(app, ["openapi", "build", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["openapi", "check", "--dir", str(tmp_path)]).exit_code == 0
    stale = tmp_path / "service-requests.yaml"
    stale.write_text(stale.read_text().replace("maximum: 1000", "maximum: 100"))
    result = runner.invoke(app, ["openapi", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "service-requests.yaml: differs from what `qala openapi build` generates" in result.output
