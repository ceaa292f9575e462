"""Third-party validators resolve our schemas from the running hub: check-jsonschema is given one URL per type
and fetches the shared definitions it refers to from the same hub, over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR
from tests.gateway.serving import HubProcess

REGISTRY = SchemaRegistry.load()
CHECKER = Path(sys.executable).with_name("check-jsonschema")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(f"sqlite:///{tmp_path_factory.mktemp('hub') / 'qala.db'}")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def check(schema_url: str, *instances: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECKER), "--no-cache", "--schemafile", schema_url, *map(str, instances)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_every_file_names_the_hub_and_nothing_else(hub: HubProcess) -> None:
    for version in REGISTRY.latest():
        url = f"{hub.base}/schemas/{version.type_name}/{version.version}/schema.json"
        response = httpx.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "application/schema+json"
        assert response.json()["$id"] == url
        assert "schemas.qala.kz" not in response.text
    assert httpx.get(f"{hub.base}/schemas/common/1.0.0/core.json").json()["$id"].startswith(hub.base)
    missing = httpx.get(f"{hub.base}/schemas/ServiceRequest/9.9.9/schema.json")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_the_host_header_cannot_steer_the_references(hub: HubProcess) -> None:
    response = httpx.get(f"{hub.base}/schemas/common/1.0.0/geo.json", headers={"Host": "evil.example"})
    assert "evil.example" not in response.text


@pytest.mark.parametrize("type_name", [v.type_name for v in REGISTRY.latest()])
def test_check_jsonschema_validates_examples_against_the_running_hub(
    hub: HubProcess, type_name: str, tmp_path: Path
) -> None:
    version = REGISTRY.get(type_name)
    url = f"{hub.base}/schemas/{type_name}/{version.version}/schema.json"
    examples = sorted((MODELS_DIR / type_name / "examples").glob("*.json"))
    valid = check(url, *examples)
    assert valid.returncode == 0, valid.stdout + valid.stderr

    # A case that plain JSON Schema must refuse (cases for the registry's own x- rules are not JSON Schema's).
    for case_file in sorted((MODELS_DIR / type_name / "invalid").glob("*.json")):
        case = json.loads(case_file.read_text("utf-8"))
        if not case["expect"]["keyword"].startswith("x-"):
            break
    else:
        pytest.fail(f"{type_name} has no invalid case that plain JSON Schema refuses")
    entity = tmp_path / "entity.json"
    entity.write_text(json.dumps(case["entity"]), encoding="utf-8")
    invalid = check(url, entity)
    assert invalid.returncode == 1, f"{case_file.name}: {invalid.stdout}{invalid.stderr}"
