"""The README and the getting-started guides, followed literally from a fresh checkout against the demo hub.

Every ``sh`` block runs, in the order a newcomer reads them: the README (demo, token, API calls, adapters, audit,
members and clients, the four certification steps, the catalogue and ``ckanapi dump``), then one guide per kind
of user. A block that fails, or whose output differs from what the docs show, fails the test naming its line.
See ``tests/qala/docs_runner.py`` for the conventions.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.qala.docs_runner import ROOT, Block, blocks, matches, session

GUIDES = ["operator", "city-system", "vendor", "resident"]
DOCUMENTS = [ROOT / "README.md", *(ROOT / "docs" / "getting-started" / f"{name}.md" for name in GUIDES)]


def test_every_guide_is_listed_and_has_commands() -> None:
    assert sorted(p.stem for p in (ROOT / "docs" / "getting-started").glob("*.md")) == sorted(GUIDES)
    for path in DOCUMENTS:
        assert [b for b in blocks(path) if b.kind == "run"], f"{path.name} has no command block that runs"
    assert next(b.kind for b in blocks(ROOT / "README.md")) == "demo", "the README starts the demo first"


def test_output_patterns() -> None:
    output = "audit log intact: 312 records, head 312 abc..., 0 signed checkpoints\nvalid: x\n"
    assert matches("audit log intact: ... records\nvalid: ...", output) is None
    assert matches("valid: ...\naudit log intact", output) == "audit log intact"


def test_the_docs_work_as_written(tmp_path: Path) -> None:
    done: list[Block] = []
    with session(tmp_path) as reader:
        for path in DOCUMENTS:
            for block in blocks(path):
                started = time.monotonic()
                reader.run(block)
                done.append(block)
                print(f"{block.where} {block.kind} {time.monotonic() - started:.1f} s")  # shown with -s
    assert len([b for b in done if b.kind == "run"]) >= 25
