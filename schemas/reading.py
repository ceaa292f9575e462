"""Read entities from JSON and NDJSON files, turning every way a file can be broken into one clear message.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "e.ndjson"
>>> _ = path.write_bytes(b'{"type": "X"}\\n[1]\\n{oops\\n')
>>> [(item.line, (item.problem or "")[:33]) for item in read_entities(path)]
[(1, ''), (2, 'expected a JSON object, got array'), (3, 'invalid JSON: unexpected characte')]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


@dataclass(frozen=True, slots=True)
class ReadItem:
    """One entity read from a file, or the reason it could not be read (``problem``)."""

    path: Path
    line: int | None
    entity: Any = None
    problem: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _decode_problem(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"not UTF-8 text (byte 0x{data[exc.start]:02X} at offset {exc.start}); JSON must be UTF-8: "
            "re-encode the file, e.g. from cp1251 or kz1048"
        )
    return None


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    return f"invalid JSON: {exc.msg}: line {exc.lineno} column {exc.colno} (char {exc.pos})"


def read_entities(path: Path) -> Iterator[ReadItem]:
    """Entities in ``path``: one JSON object, a JSON array of objects, or NDJSON (one object per line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield ReadItem(path, None, problem=f"cannot read: {exc.strerror or exc}")
        return
    problem = _decode_problem(data)
    if problem:
        yield ReadItem(path, None, problem=problem)
        return
    if path.suffix.lower() in NDJSON_SUFFIXES:
        yield from _read_ndjson(path, data)
        return
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield ReadItem(path, None, problem=_json_problem(exc))
        return
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        line = index + 1 if isinstance(document, list) else None
        if isinstance(item, dict):
            yield ReadItem(path, line, entity=item)
        else:
            yield ReadItem(path, line, problem=f"expected a JSON object, got {json_type(item)}")


def _read_ndjson(path: Path, data: bytes) -> Iterator[ReadItem]:
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield ReadItem(path, number, problem=_json_problem(exc))
            continue
        if isinstance(item, dict):
            yield ReadItem(path, number, entity=item)
        else:
            yield ReadItem(path, number, problem=f"expected a JSON object, got {json_type(item)}")
