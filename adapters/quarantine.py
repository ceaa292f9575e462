"""The quarantine: one NDJSON line per rejected record, with where it came from, what it was and why.

Each line is ``{"source", "stage", "position": {"file", "line"|"row"|"record", "byte_offset"?}, "raw",
"reasons": [{"code", "message", "field"?}]}``; ``stage`` is ``read``, ``map``, ``validate`` or ``hub``.

    >>> import io
    >>> sink = io.BytesIO()
    >>> q = Quarantine(sink, source="ikomek-csv")
    >>> q.add(Position("cases.csv", line=7), "IK-7;31.02.2024", [Reason("invalid-value", "bad date", "dateRequested")])
    >>> sink.getvalue()[:50]
    b'{"source":"ikomek-csv","stage":"map","position":{"'
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from adapters.records import Position, Reason


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class Quarantine:
    """Appends rejected records to a binary stream as NDJSON."""

    def __init__(self, stream: IO[bytes], source: str) -> None:
        self.stream = stream
        self.source = source
        self.count = 0

    def add(self, position: Position, raw: Any, reasons: list[Reason], stage: str = "map") -> None:
        line = {
            "source": self.source,
            "stage": stage,
            "position": position.as_dict(),
            "raw": raw,
            "reasons": [r.as_dict() for r in reasons],
        }
        self.stream.write(orjson.dumps(line, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        self.count += 1


def carry_over_hub_lines(path: Path) -> Path | None:
    """On a resumed push, keep the hub's rejections of batches already committed: move the old quarantine aside.

    Returns the moved file, whose ``stage: hub`` lines :func:`hub_lines` yields for copying into the new one.
    """
    if not path.exists():
        return None
    previous = path.with_name(path.name + ".previous")
    shutil.move(path, previous)
    return previous


def hub_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        for line in stream:
            if line.strip() and orjson.loads(line).get("stage") == "hub":
                yield line if line.endswith(b"\n") else line + b"\n"


def read_quarantine(path: str | Path) -> Iterator[dict[str, Any]]:
    """Iterate a quarantine file's entries, e.g. to count reasons: ``Counter(r["code"] for e in
    read_quarantine("q.ndjson") for r in e["reasons"])``."""
    with Path(path).open("rb") as stream:
        for line in stream:
            if line.strip():
                entry: dict[str, Any] = orjson.loads(line)
                yield entry
