"""OpenAPI linters that vendors and integrators run: Redocly on the hub's document, Spectral on the mandate.

Both are Node tools from the npm registry; `make test` and `.ci/run` install them when they are missing
(`make tools`). Before the hub declared security on every protected operation and a `servers` entry, Redocly
reported 29 errors; before `Position` gave `items` beside `prefixItems`, Spectral reported one per document.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from fastapi import FastAPI

from openapi.build import MANDATE_DIR


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make tools` (npm install -g @redocly/cli @stoplight/spectral-cli)"
    return found


def test_redocly_finds_no_error_in_the_hubs_document(app: FastAPI, tmp_path: Path) -> None:
    document = tmp_path / "hub.json"
    document.write_text(json.dumps(app.openapi()), encoding="utf-8")
    run = subprocess.run(
        [tool("redocly"), "lint", "--format", "json", str(document)], capture_output=True, text=True, check=False
    )
    report = json.loads(run.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert not errors, json.dumps(errors[:5], indent=1)
    assert report["totals"]["errors"] == 0


def test_spectral_finds_no_error_in_any_mandate_document(tmp_path: Path) -> None:
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n', encoding="utf-8")
    documents = sorted(str(p) for p in MANDATE_DIR.glob("*.yaml"))
    assert len(documents) == 12
    run = subprocess.run(
        [tool("spectral"), "lint", "--ruleset", str(ruleset), "--format", "json", "--quiet", *documents],
        capture_output=True,
        text=True,
        check=False,
    )
    results = json.loads(run.stdout or "[]")
    errors = [f"{r['source']}: {r['code']} {r['message']} at {r['path']}" for r in results if r["severity"] == 0]
    assert not errors, "\n".join(errors[:10])
