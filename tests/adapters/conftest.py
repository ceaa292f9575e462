"""Fixtures for the adapter tests: the schema registry, the samples folder, a CSV writer."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.mapping import Mapping
from adapters.pipeline import Summary, run
from adapters.quarantine import Quarantine, read_quarantine
from adapters.registry import AdapterRegistry
from schemas import SchemaRegistry

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"


@pytest.fixture(scope="session")
def schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


@pytest.fixture(scope="session")
def adapters() -> AdapterRegistry:
    return AdapterRegistry.load()


@pytest.fixture
def samples() -> Path:
    return SAMPLES


class Converted:
    """The outcome of one run, in memory: summary, entities, quarantine lines."""

    def __init__(self, summary: Summary, out: bytes, quarantine: Path) -> None:
        self.summary = summary
        self.entities = [orjson.loads(line) for line in out.splitlines()]
        self.quarantine = list(read_quarantine(quarantine))

    def by_local_id(self, local_id: str) -> dict[str, object]:
        return next(e for e in self.entities if e["id"].rsplit(":", 1)[-1] == local_id)


ConvertFn = Callable[..., Converted]


@pytest.fixture
def convert(schemas: SchemaRegistry, adapters: AdapterRegistry, tmp_path: Path) -> ConvertFn:
    """``convert(adapter_name, source, mapping_path=None, **options)``: run the pipeline to memory."""

    def _convert(name: str, source: str | Path, mapping: Path | None = None, **options: str) -> Converted:
        workers = int(options.pop("workers", "1"))  # worker processes of the pipeline, not an adapter option
        adapter = adapters.create(name, str(source), Mapping.load(mapping) if mapping else None, options)
        out = io.BytesIO()
        q_path = tmp_path / f"{name}.quarantine.ndjson"
        with q_path.open("wb") as q:
            summary = run(adapter, schemas, out=out, quarantine=Quarantine(q, name), workers=workers)
        return Converted(summary, out.getvalue(), q_path)

    return _convert


class FakeHub:
    """Idempotent by id + content, like the hub; failures can be switched on to play an outage."""

    def __init__(self, client_id: str = "ikomek", secret: str = "s3cret") -> None:
        self.credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.store: dict[str, str] = {}
        self.tokens: list[str] = []
        self.batch_calls = 0
        self.down = False  # every batch call fails with a connection error
        self.lose_answer_once = False  # commit the next batch, then drop the connection
        self.throttle_once: float | None = None  # answer 429 with this Retry-After once
        self.expire_token_once = False
        self.reject_city: str | None = None
        self.quarantine: dict[str, bytes] = {}  # record hash -> line, stored once like the hub

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            if request.headers.get("authorization") != f"Basic {self.credentials}":
                return httpx.Response(401, json={"error": "invalid_client"})
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            if form.get("grant_type") != "client_credentials":
                return httpx.Response(400, json={"error": "unsupported_grant_type"})
            token = f"t{len(self.tokens)}"
            self.tokens.append(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": 300})
        if request.url.path == "/api/v1/quarantine":
            lines = [line for line in request.content.splitlines() if line.strip()]
            before = len(self.quarantine)
            for line in lines:
                canonical = orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
                self.quarantine[hashlib.sha256(canonical).hexdigest()] = line
            stored = len(self.quarantine) - before
            return httpx.Response(
                200, json={"received": len(lines), "stored": stored, "duplicates": len(lines) - stored}
            )
        if request.url.path != "/api/v1/batch":
            return httpx.Response(404)
        self.batch_calls += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.expire_token_once or request.headers.get("authorization") != f"Bearer {self.tokens[-1]}":
            self.expire_token_once = False
            return httpx.Response(401, json={"title": "token expired"})
        if self.throttle_once is not None:
            retry, self.throttle_once = self.throttle_once, None
            return httpx.Response(429, headers={"Retry-After": str(retry)})
        assert request.headers["content-type"] == "application/x-ndjson"
        results = [self._one(i, orjson.loads(line)) for i, line in enumerate(request.content.splitlines())]
        if self.lose_answer_once:
            self.lose_answer_once = False
            raise httpx.ReadError("connection reset after the commit", request=request)
        return httpx.Response(207, content=b"\n".join(orjson.dumps(r) for r in results) + b"\n")

    def _one(self, index: int, entity: dict[str, Any]) -> dict[str, Any]:
        if entity.get("city") == self.reject_city or entity.get("address", {}).get("district") == self.reject_city:
            error = {"pointer": "/address/district", "keyword": "x-scope", "message": "not a district of yours"}
            return {"index": index, "id": entity["id"], "status": "rejected", "errors": [error]}
        digest = hashlib.sha256(orjson.dumps(entity, option=orjson.OPT_SORT_KEYS)).hexdigest()
        previous = self.store.get(entity["id"])
        self.store[entity["id"]] = digest
        status = "created" if previous is None else ("unchanged" if previous == digest else "updated")
        return {"index": index, "id": entity["id"], "status": status, "errors": []}


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()
