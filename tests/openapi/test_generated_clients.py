"""Vendors generate clients from the mandate: openapi-python-client must accept every document, and the client it
writes must create, list and page against the hub.

The generator is a tool nobody here wrote; it parses each document with its own OpenAPI model (a boolean
``items`` beside ``prefixItems`` once made it refuse 8 of the 12 documents), and its models parse our answers.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from openapi.build import MANDATE_DIR
from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR
from tests.gateway.conftest import ISSUER, Registered, get_token

REGISTRY = SchemaRegistry.load()
COLLECTIONS = sorted(path.stem for path in MANDATE_DIR.glob("*.yaml"))
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def package_name(collection: str) -> str:
    return "mandate_" + collection.replace("-", "_")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One generated client package per mandate document, importable from the returned folder."""
    root = tmp_path_factory.mktemp("clients")
    failures = []
    for collection in COLLECTIONS:
        run = subprocess.run(
            [
                str(GENERATOR),
                "generate",
                "--path",
                str(MANDATE_DIR / f"{collection}.yaml"),
                "--output-path",
                str(root / package_name(collection)),
                "--meta",
                "none",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0 or not (root / package_name(collection) / "client.py").exists():
            failures.append(f"{collection}: {run.stdout[-600:]}{run.stderr[-600:]}")
    assert not failures, "\n".join(failures)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in list(sys.modules):
            if name.startswith("mandate_"):
                del sys.modules[name]


def operation(package: str, root: Path, verb: str) -> ModuleType:
    """The generated module of ``verb`` (list, create, ...) for the package's collection."""
    (found,) = (root / package / "api").glob(f"*/{verb}_*.py")
    return importlib.import_module(f"{package}.api.{found.parent.name}.{found.stem}")


def examples(type_name: str) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text("utf-8")) for path in sorted((MODELS_DIR / type_name / "examples").glob("*.json"))
    ]


def test_the_generator_accepts_every_mandate_document(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == sorted(package_name(c) for c in COLLECTIONS)


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_a_generated_client_creates_lists_and_pages(
    collection: str, generated: Path, app: FastAPI, http: httpx.AsyncClient, register: Any
) -> None:
    version = REGISTRY.get(collection)
    entities = examples(version.type_name)
    assert len(entities) >= 2, f"{version.type_name} needs two examples to page through"
    cities = sorted({entity["city"] for entity in entities})
    who: Registered = await register(
        scopes=[f"{collection}:read", f"{collection}:write", f"{collection}:read-personal"], cities=cities
    )
    token = await get_token(http, who)

    package = package_name(collection)
    client_module = importlib.import_module(f"{package}.client")
    models = importlib.import_module(f"{package}.models")
    model = getattr(models, version.type_name)
    client = client_module.AuthenticatedClient(
        base_url=f"{ISSUER}/api/v1", token=token, httpx_args={"transport": httpx.ASGITransport(app=app)}
    )

    create = operation(package, generated, "create")
    for entity in entities:
        response = await create.asyncio_detailed(client=client, body=model.from_dict(entity))
        assert response.status_code == 201, response.content
        assert response.parsed.to_dict()["id"] == entity["id"]

    list_op = operation(package, generated, "list")
    seen: list[str] = []
    cursor: Any = None
    for _ in range(len(entities) + 1):
        kwargs = {"client": client, "limit": 1}
        if cursor is not None:
            kwargs["cursor"] = cursor
        page = await list_op.asyncio_detailed(**kwargs)
        assert page.status_code == 200, page.content
        seen.extend(item.to_dict()["id"] for item in page.parsed.items)
        if page.parsed.next_ is None:
            break
        cursor = parse_qs(urlsplit(page.parsed.next_).query)["cursor"][0]
    assert sorted(seen) == sorted(entity["id"] for entity in entities)
    assert len(seen) == len(entities), "a page repeated an entity"
