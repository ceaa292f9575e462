"""``qala demo``: show what Qala does, end to end, on this machine.

Today it loads the canonical data models, validates every bundled example on both validation paths and
checks the open-API mandate. As the gateway lands it starts the hub on http://127.0.0.1:8000 with demo data
loaded through the adapters.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from openapi.build import MANDATE_DIR, drift
from qala.cli import CliError
from schemas import SchemaRegistry
from schemas.registry import MODELS_DIR

out = Console(highlight=False)


def demo() -> None:
    """Load the data models, validate the bundled examples and check the open-API mandate."""
    registry = SchemaRegistry.load()
    table = Table("type", "collection", "version", "examples valid", "invalid examples refused")
    failures: list[str] = []
    for latest in registry.latest():
        folder = MODELS_DIR / latest.type_name
        good = _count(folder / "examples", registry, expect_valid=True, failures=failures)
        bad = _count(folder / "invalid", registry, expect_valid=False, failures=failures)
        table.add_row(latest.type_name, latest.collection, latest.version, good, bad)
    out.print(table)
    stale = drift(registry, MANDATE_DIR)
    out.print(
        f"open-API mandate: {len(list(MANDATE_DIR.glob('*.yaml')))} documents in {MANDATE_DIR}"
        + (f", {len(stale)} stale" if stale else ", all current")
    )
    if failures or stale:
        raise CliError("; ".join(failures + stale), exit_code=1)
    out.print("Try: qala schemas show service-requests | qala schemas validate FILE | qala openapi check")
    raise typer.Exit(0)


def _count(folder: Path, registry: SchemaRegistry, *, expect_valid: bool, failures: list[str]) -> str:
    paths = sorted(folder.glob("*.json"))
    ok = 0
    for path in paths:
        document = orjson.loads(path.read_bytes())
        entity = document if expect_valid else document["entity"]
        fast, explained = registry.is_valid(entity), not registry.explain(entity)
        if fast == explained == expect_valid:
            ok += 1
        else:
            failures.append(f"{path}: expected {'valid' if expect_valid else 'invalid'}")
    return f"{ok}/{len(paths)}"
