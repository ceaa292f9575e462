"""The contact-centre CSV path gives, byte for byte, the NDJSON, quarantine and summary it gave before it was made
faster, in every way it can run: one process, worker processes, blocks cut small.

The source is generated here: the bench's rows (the sample's good rows with fresh ids and dates, one bad date in
a few) and edge cases (comma and dot decimals, empty, blank and missing fields, quoted delimiters and line breaks,
short and long rows, unknown lookup words, bad phones and booleans, values the schema refuses, a blank line, a
byte cp1251 lacks, KZ-1048 letters in a file declared cp1251, an unclosed quote at the end), once in cp1251 and
once in KZ-1048. The expected files in ``golden/`` were written by the code before the speed-ups of issue #21;
when a change of behaviour is meant, rewrite them with ``python tests/adapters/test_adapt_golden.py`` and say why
in the commit. Each file is stored gzipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.mapping import Mapping
from adapters.parallel import run_blocks
from adapters.pipeline import run
from adapters.quarantine import Quarantine
from adapters.registry import AdapterRegistry
from adapters.sources.csv import CsvAdapter
from schemas import SchemaRegistry

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
MAPPING = SAMPLES / "ikomek-109-astana.yaml"
GOLDEN = Path(__file__).parent / "golden"
CASES = {"cp1251": {}, "kz1048": {"encoding": "kz1048"}}
"""Source encoding -> the reading options it is run with."""


def _good_rows() -> tuple[list[str], list[list[str]]]:
    text = (SAMPLES / "ikomek-109-astana.csv").read_bytes().decode("cp1251")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    header = next(reader)
    return header, [r for r in reader if len(r) == len(header) and not r[1].startswith("31.02")][:40]


def _edges(row: list[str], encoding: str) -> list[list[str] | str]:
    """Rows that each try one thing; a str is written as it is (a line of its own)."""

    def but(**cells: str) -> list[str]:
        out = list(row)
        for key, value in cells.items():
            out[int(key[1:])] = value
        return out

    kazakh = "Қала әкімдігі, Ұлттық көше, Өскемен Ғимарат Һ" if encoding == "kz1048" else "Кала акимата"
    return [
        but(c7="71.3951", c8="51.1274"),  # dot decimals
        but(c7="", c8="51,1274"),  # half a point: no location
        but(c7="долгота", c8="51,1274"),  # not a number
        but(c7="200,5", c8="51,1274"),  # outside the globe: the schema refuses it
        but(c4="", c5="", c6="", c11="", c12="", c13="", c14=""),  # every optional field empty
        but(c4="   ", c12="\u00a0"),  # blank ones
        but(c9=""),  # the required status missing
        but(c9=" "),
        but(c2="Факс"),  # a word no lookup knows
        but(c3="Ремонт  дорог"),  # a known one, spaced out
        but(c9="ВЫПОЛНЕНО"),
        but(c13="12345"),  # not a phone
        but(c13="+7 701 555 01 23"),
        but(c14="Иә" if encoding == "kz1048" else " да "),
        but(c14="может быть"),
        but(c1="01.03.2024 00:00", c10="29.02.2024 23:59"),  # either side of Astana's change of offset
        but(c1="2024-03-05 10:00"),  # a form the mapping does not read
        but(c1="31.02.2024 10:00"),
        but(c10="32.13.2024 25:61"),
        but(c4='Дом; подъезд "2"\r\nвторая строка; и "кавычки"'),  # quoted delimiter, quotes and line break
        but(c11="А" * 301),  # longer than the schema allows
        but(c0="IK B 1"),  # an id the URN pattern refuses
        but(c6=kazakh),
        row[:9],  # short
        [*row, "", ""],  # long, with empty cells only
        [*row, "лишнее"],  # long
        "",  # a blank line
    ]


def source_bytes(encoding: str, rows: int = 320) -> bytes:
    """The bench's rows (see bench/adapters.py) with the edge cases among them, in ``encoding``."""
    header, good = _good_rows()
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    lines: list[list[str] | str] = []
    for n in range(rows):
        row = list(good[n % len(good)])
        row[0] = f"IK-B-{n:08d}"
        day = 1 + (n // 10) % 28
        row[1] = f"{day:02d}.{1 + (n // 40) % 12:02d}.2024 {n % 24:02d}:{n % 60:02d}"
        if row[10]:
            row[10] = f"{day:02d}.{1 + (n // 40) % 12:02d}.2024 23:{n % 60:02d}"
        if n % 50 == 49:
            row[1] = "31.02.2024 10:00"
        lines.append(row)
    edges = _edges(lines[3], encoding)
    for i, edge in enumerate(edges):  # spread out, so that blocks cut small meet them in every position
        lines.insert(1 + i * (len(lines) // len(edges)), edge)
    for line in lines:
        if isinstance(line, str):
            out.write(line + "\r\n")
        else:
            writer.writerow(line)
    body = out.getvalue().encode(encoding)
    if encoding == "cp1251":  # a byte cp1251 lacks, and KZ-1048's Қ in a file declared cp1251, both past the
        # 64 KiB the encoding is checked on at the start
        at = body.rindex("Есиль".encode(encoding))
        body = body[:at] + b"\x98" + body[at + 1 :]
        at = body.rindex("Сарыарка".encode(encoding))
        body = body[:at] + b"\x8d" + body[at + 1 :]
        if at < 1 << 16:
            raise AssertionError("the source is too short for its late bytes")
    return body + b'IK-LAST;"unclosed\r\n'


def outputs(schemas: SchemaRegistry, source: str, options: dict[str, str], **how: Any) -> dict[str, bytes]:
    """NDJSON, quarantine and summary of a run over ``source``; ``how`` is passed to :func:`run`, unless it
    names ``block_bytes`` (then to :func:`run_blocks`)."""
    adapter = AdapterRegistry.load().create("csv", source, Mapping.load(MAPPING), options)
    out, q = io.BytesIO(), io.BytesIO()
    runner: Any = run_blocks if "block_bytes" in how else run
    summary = runner(adapter, schemas, out=out, quarantine=Quarantine(q, "csv"), **how)
    return {
        "ndjson": out.getvalue(),
        "quarantine.ndjson": q.getvalue(),
        "summary.json": orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE),
    }


WAYS: dict[str, dict[str, Any]] = {
    "one process": {},
    "records, one process": {"records": True},
    "records, 2 workers": {"records": True, "workers": 2},
    "2 workers": {"workers": 2},
    "3 workers": {"workers": 3},
    "blocks of 2 KiB": {"block_bytes": 2048, "workers": 2},
    "blocks of 300 bytes": {"block_bytes": 300, "workers": 2},
}


@pytest.mark.parametrize("encoding", sorted(CASES))
@pytest.mark.parametrize("way", sorted(WAYS))
def test_output_is_as_before(
    schemas: SchemaRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, way: str
) -> None:
    monkeypatch.chdir(tmp_path)  # positions name the file as given: keep it the same in every run
    Path(f"edge-{encoding}.csv").write_bytes(source_bytes(encoding))
    how = dict(WAYS[way])
    if how.pop("records", False):  # as a source that cannot be cut into blocks: record by record
        monkeypatch.setattr(CsvAdapter, "splittable", lambda self: False)
    got = outputs(schemas, f"edge-{encoding}.csv", CASES[encoding], **how)
    for suffix, data in got.items():
        assert data == _golden(f"edge-{encoding}.{suffix}"), f"{way}: {suffix} differs"


def test_the_edge_cases_are_met(schemas: SchemaRegistry) -> None:
    """The golden files hold what the edge cases are there for (a check on the generator, not the code)."""
    summary = orjson.loads(_golden("edge-cp1251.summary.json"))
    reasons = {r["reason"] for r in summary["topReasons"]}
    quarantine = _golden("edge-cp1251.quarantine.ndjson")
    for stage in (b'"read"', b'"map"', b'"validate"'):
        assert b'"stage":' + stage in quarantine
    for code in (b"undecodable", b"short-row", b"long-row", b"malformed-csv", b"unknown-value", b"missing-value"):
        assert code in quarantine
    assert summary["read"] == summary["accepted"] + summary["rejected"]
    assert reasons
    kz = _golden("edge-kz1048.ndjson")
    assert "Ұлттық".encode() in kz
    assert b'"coordinates":[71.3951,51.1274]' in kz


def _golden(name: str) -> bytes:
    """An expected file; gzipped, as the NDJSON of a few hundred rows repeats itself much."""
    return gzip.decompress((GOLDEN / f"{name}.gz").read_bytes())


def write_golden() -> None:
    """Rewrite the expected files from the code as it is (one process)."""
    schemas = SchemaRegistry.load()
    GOLDEN.mkdir(exist_ok=True)
    here = Path.cwd()
    with __import__("tempfile").TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            for encoding, options in CASES.items():
                Path(f"edge-{encoding}.csv").write_bytes(source_bytes(encoding))
                for suffix, data in outputs(schemas, f"edge-{encoding}.csv", options).items():
                    (GOLDEN / f"edge-{encoding}.{suffix}.gz").write_bytes(gzip.compress(data, mtime=0))
        finally:
            os.chdir(here)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[2]))
    write_golden()
