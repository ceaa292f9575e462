"""Fixtures for the adapter tests: the schema registry, the samples folder, a CSV writer."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

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
        adapter = adapters.create(name, str(source), Mapping.load(mapping) if mapping else None, options)
        out = io.BytesIO()
        q_path = tmp_path / f"{name}.quarantine.ndjson"
        with q_path.open("wb") as q:
            summary = run(adapter, schemas, out=out, quarantine=Quarantine(q, name))
        return Converted(summary, out.getvalue(), q_path)

    return _convert
