"""Every bundled example validates and every invalid one fails for its stated reason, on both paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR

REGISTRY = SchemaRegistry.load()
TYPE_DIRS = sorted(p for p in MODELS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
VALID = [p for d in TYPE_DIRS for p in sorted((d / "examples").glob("*.json"))]
INVALID = [p for d in TYPE_DIRS for p in sorted((d / "invalid").glob("*.json"))]


def _id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.stem}"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_release_one_types_are_all_present() -> None:
    assert set(REGISTRY.types()) >= {"ServiceRequest"}


@pytest.mark.parametrize("type_dir", TYPE_DIRS, ids=lambda p: p.name)
def test_each_type_has_examples_for_astana_and_almaty_and_invalid_cases(type_dir: Path) -> None:
    cities = {load(p)["city"] for p in (type_dir / "examples").glob("*.json")}
    assert {"astana", "almaty"} <= cities
    assert len(list((type_dir / "invalid").glob("*.json"))) >= 3


@pytest.mark.parametrize("path", VALID, ids=_id)
def test_valid_example_passes_both_paths(path: Path) -> None:
    entity = load(path)
    assert entity["type"] == path.parent.parent.name
    assert REGISTRY.explain(entity) == []
    assert REGISTRY.is_valid(entity)


@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_invalid_example_fails_both_paths_for_its_reason(path: Path) -> None:
    case = load(path)
    assert case["reason"].strip(), "an invalid example must say why it fails"
    issues = REGISTRY.explain(case["entity"])
    assert not REGISTRY.is_valid(case["entity"])
    found = [(i.pointer, i.keyword) for i in issues]
    assert (case["expect"]["pointer"], case["expect"]["keyword"]) in found, found
