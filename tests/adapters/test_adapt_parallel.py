"""``workers=N`` maps and validates in several processes and must give exactly what one process gives."""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters import parallel
from adapters.mapping import Mapping
from adapters.parallel import run_blocks, run_parallel
from adapters.pipeline import Settled, run
from adapters.quarantine import Quarantine
from adapters.records import Entity, Position, Reason
from adapters.registry import AdapterRegistry
from adapters.sources.csv import CsvAdapter
from schemas import SchemaRegistry

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
MAPPING = SAMPLES / "ikomek-109-astana.yaml"


class RecordingSink:
    """Takes entities like the pusher does; refuses one id, as the hub might."""

    carried_rejections = 0

    def __init__(self) -> None:
        self.offered: list[tuple[Entity, Position, object]] = []

    def offer(self, entity: Entity, position: Position, raw: object) -> list[Settled]:
        self.offered.append((entity, position, raw))
        settled = Settled(orjson.dumps(entity), entity["type"], position, raw)
        if entity["serviceRequestId"].endswith("7"):
            settled.reasons = [Reason("hub-conflict", "refused by the hub", "/id")]
        return [settled]

    def finish(self) -> list[Settled]:
        return []


def _big_source(tmp_path: Path) -> Path:
    """The sample's rows (quoted line breaks, a short row, bad dates) repeated past several chunks."""
    head, body = (SAMPLES / "ikomek-109-astana.csv").read_bytes().split(b"\r\n", 1)
    path = tmp_path / "big.csv"
    path.write_bytes(head + b"\r\n" + body * 7 + b'IK-9;"unclosed\r\n')
    return path


def _run(
    schemas: SchemaRegistry, source: Path, *, mapping: Mapping | None = None, runner: Any = run, **kwargs: Any
) -> tuple[dict[str, object], bytes, bytes]:
    """Summary, NDJSON and quarantine of ``runner`` (one process by default) over ``source``. One process reads
    it record by record, as a source that cannot be cut into blocks: the reference the other ways are held to."""
    adapter = AdapterRegistry.load().create("csv", str(source), mapping or Mapping.load(MAPPING))
    if runner is run and kwargs.get("workers", 1) == 1:
        adapter.splittable = lambda: False  # type: ignore[attr-defined]
    out, q = io.BytesIO(), io.BytesIO()
    summary = runner(adapter, schemas, out=out, quarantine=Quarantine(q, "csv"), **kwargs)
    return summary.as_dict(), out.getvalue(), q.getvalue()


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_the_same_output_quarantine_and_summary(
    schemas: SchemaRegistry, tmp_path: Path, workers: int
) -> None:
    source = _big_source(tmp_path)
    one = _run(schemas, source)
    many = _run(schemas, source, workers=workers)
    assert many[1] == one[1]
    assert many[2] == one[2]
    assert many[0] == one[0]
    summary = one[0]
    assert summary["read"] == summary["accepted"] + summary["rejected"]  # type: ignore[operator]
    assert summary["rejected"] == 3 * 7 + 1  # the sample's three bad rows, seven times, and the unclosed quote


def test_workers_append_to_an_output_file_after_what_it_holds(schemas: SchemaRegistry, tmp_path: Path) -> None:
    """Into a real file, opened to write or to append, the blocks' NDJSON comes after what the caller wrote
    first, still in the file object's buffer, and before what it writes after."""
    source = _big_source(tmp_path)
    expected = _run(schemas, source)[1]
    adapter = AdapterRegistry.load().create("csv", str(source), Mapping.load(MAPPING))
    target = tmp_path / "out.ndjson"
    with target.open("wb") as out:
        out.write(b"already here\n")
        run_blocks(adapter, schemas, out=out, workers=2, block_bytes=3000)
        out.write(b"and after\n")
    assert target.read_bytes() == b"already here\n" + expected + b"and after\n"
    assert expected.count(b"\n") == 48 * 7 - 3 * 7
    with target.open("ab") as out:
        run_blocks(adapter, schemas, out=out, workers=2, block_bytes=3000)
    assert target.read_bytes() == b"already here\n" + expected + b"and after\n" + expected


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
def test_spilled_ndjson_reaches_a_compressed_output_compressed(
    schemas: SchemaRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opener: Any
) -> None:
    """NDJSON that did not fit in shared memory reaches a gzip, bz2 or lzma file through its write(): their
    fileno() is the compressed file's beneath, and a copy into that by the kernel once corrupted it."""
    source = _big_source(tmp_path)
    monkeypatch.setattr(parallel, "_slot_bytes", lambda block_bytes: 1)
    adapter = AdapterRegistry.load().create("csv", str(source), Mapping.load(MAPPING))
    target = tmp_path / "out.ndjson.z"
    with opener(target, "wb") as out:
        run_blocks(adapter, schemas, out=out, workers=2, block_bytes=500)
    with opener(target, "rb") as written:
        assert written.read() == _run(schemas, source)[1]


@pytest.mark.parametrize("slot_bytes", [1, 2000])
def test_ndjson_that_does_not_fit_in_shared_memory_goes_through_a_file(
    schemas: SchemaRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slot_bytes: int
) -> None:
    """Workers leave a block's NDJSON in shared memory, and what does not fit in a file: with room for no line,
    or for some of a block's lines, the output is still one process's."""
    source = _big_source(tmp_path)
    monkeypatch.setattr(parallel, "_slot_bytes", lambda block_bytes: slot_bytes)
    monkeypatch.setattr(parallel, "LINES", 1)  # a write per line: some lines fit, then the rest spills
    assert _run(schemas, source, runner=run_blocks, workers=2, block_bytes=1000) == _run(schemas, source)


def test_small_chunks_keep_the_order(schemas: SchemaRegistry, tmp_path: Path) -> None:
    """Records read in the parent and mapped in chunks of five (the path a sink takes; without one a CSV is
    cut into blocks instead)."""
    source = _big_source(tmp_path)
    sinks = [RecordingSink(), RecordingSink()]
    one = _run(schemas, source, sink=sinks[0])
    many = _run(schemas, source, runner=run_parallel, sink=sinks[1], workers=2, chunk=5)
    assert many == one
    assert sinks[1].offered == sinks[0].offered
    assert one[0]["read"] == 48 * 7 + 1


def test_workers_offer_the_same_entities_to_the_sink(schemas: SchemaRegistry, tmp_path: Path) -> None:
    source = _big_source(tmp_path)
    sinks = [RecordingSink(), RecordingSink()]
    one = _run(schemas, source, sink=sinks[0])
    many = _run(schemas, source, sink=sinks[1], workers=2)
    assert sinks[1].offered == sinks[0].offered
    assert many == one
    assert one[0]["rejectedByHub"] > 0


def test_progress_is_reported_per_chunk_not_per_record(schemas: SchemaRegistry, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None, int]] = []
    adapter = AdapterRegistry.load().create("csv", str(_big_source(tmp_path)), Mapping.load(MAPPING))
    sink = RecordingSink()  # with a sink, records are read here and mapped in chunks of records
    run_parallel(adapter, schemas, sink=sink, workers=2, chunk=100, progress=lambda *a: calls.append(a))
    assert len(calls) == 5  # four chunks and the closing call
    assert calls[-1][2] == 48 * 7 + 1
    assert calls[-1][0] == calls[-1][1]  # all bytes read


def test_progress_is_reported_per_block(schemas: SchemaRegistry, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None, int]] = []
    source = _big_source(tmp_path)
    adapter = AdapterRegistry.load().create("csv", str(source), Mapping.load(MAPPING))
    summary = run_blocks(adapter, schemas, workers=2, block_bytes=20_000, progress=lambda *a: calls.append(a))
    size = source.stat().st_size
    assert len(calls) >= 1 + size // 20_000  # one per block of about 20,000 bytes, and the end
    assert all(a[0] < b[0] for a, b in itertools.pairwise(calls[:-1]))  # the closing call repeats the last
    assert calls[-1][:2] == (source.stat().st_size, source.stat().st_size)
    assert calls[-1][2] == summary.read == 48 * 7 + 1


@pytest.mark.parametrize("block_bytes", [1, 97, 600, 5000])
def test_blocks_cut_only_between_records(schemas: SchemaRegistry, tmp_path: Path, block_bytes: int) -> None:
    """Blocks smaller than a record, and blocks that end inside a quoted line break, a CRLF or a blank line:
    the workers still read exactly the records, positions and raw text of one process."""
    source = _big_source(tmp_path)
    assert _run(schemas, source, runner=run_blocks, workers=2, block_bytes=block_bytes) == _run(schemas, source)


def test_blocks_of_a_utf8_source_keep_byte_offsets(schemas: SchemaRegistry, tmp_path: Path) -> None:
    """Multi-byte letters: offsets in the quarantine are bytes, as one process reports them."""
    text = (SAMPLES / "ikomek-109-astana.csv").read_bytes().decode("cp1251")
    source = tmp_path / "utf8.csv"
    source.write_bytes(text.encode("utf-8") * 1)
    mapping = Mapping.load(MAPPING)
    mapping.source["encoding"] = "utf-8"
    blocks = _run(schemas, source, mapping=mapping, runner=run_blocks, workers=2, block_bytes=333)
    assert blocks == _run(schemas, source, mapping=mapping)
    assert b'"byte_offset"' in blocks[2]


@pytest.mark.parametrize(("encoding", "delimiter"), [("cp1251", "¦"), ("utf-8", "§")])
def test_a_non_ascii_delimiter_is_read_by_the_parent(
    schemas: SchemaRegistry, tmp_path: Path, encoding: str, delimiter: str
) -> None:
    """Cutting blocks finds delimiters and quotes by their byte, and a delimiter outside ASCII is not one byte:
    such a source is read record by record in the parent instead, and the result is still one process's."""
    text = (SAMPLES / "ikomek-109-astana.csv").read_bytes().decode("cp1251").replace(";", delimiter)
    source = tmp_path / "odd.csv"
    source.write_bytes(text.encode(encoding) * 1)
    mapping = Mapping.load(MAPPING)
    mapping.source.update(encoding=encoding, delimiter=delimiter)
    assert not AdapterRegistry.load().create("csv", str(source), mapping).splittable()  # type: ignore[attr-defined]
    one = _run(schemas, source, mapping=mapping)
    assert _run(schemas, source, mapping=mapping, runner=run_parallel, workers=2, chunk=7) == one
    assert one[0]["accepted"] > 30  # type: ignore[operator]


def test_a_wrong_guess_at_a_block_end_is_read_again(
    schemas: SchemaRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone quote mark inside an unquoted field (csv.reader takes it as a plain character) throws the quote
    count off by one, so that a line break inside a later quoted field looks like a record's end. The worker's
    last record then runs out of input; the blocks after it are dropped and the file is cut again from there."""
    head, body = (SAMPLES / "ikomek-109-astana.csv").read_bytes().split(b"\r\n", 1)
    rows = body.split(b"\r\n")
    good = [row.split(b";") for row in rows if row.startswith(b"IK-") and b'"' not in row][:6]
    lone, broken = list(good[0]), list(good[1])
    lone[4] = 'Экран 12" дюймов'.encode("cp1251")  # unquoted: csv.reader keeps the quote mark as it is
    broken[4] = '"первая строка\r\nвторая строка"'.encode("cp1251")
    records = [b";".join(row) for row in [*good, lone, broken]]
    source = tmp_path / "quotes.csv"
    source.write_bytes(head + b"\r\n" + b"\r\n".join(records * 12) + b"\r\n")
    guesses: list[bool] = []
    cut = CsvAdapter.cuts

    def spy(self: CsvAdapter, size: int, start: tuple[int, int] | None = None, *, guess: bool = True) -> Any:
        guesses.append(guess)
        return cut(self, size, start, guess=guess)

    monkeypatch.setattr(CsvAdapter, "cuts", spy)
    one = _run(schemas, source)
    assert one[0]["read"] == 12 * 8
    for block_bytes in (300, 700, 1500):
        assert _run(schemas, source, runner=run_blocks, workers=2, block_bytes=block_bytes) == one
    assert False in guesses  # some guess was wrong, and the file was cut again without guessing


def test_a_field_under_the_limit_in_letters_but_over_it_in_bytes(schemas: SchemaRegistry, tmp_path: Path) -> None:
    """csv.reader limits a field to 131,072 characters. A quoted UTF-8 field of 100,000 Cyrillic letters on
    1,000 lines is 200,000 bytes: blocks must be cut where csv.reader, reading characters, ends records."""
    head, body = (SAMPLES / "ikomek-109-astana.csv").read_bytes().decode("cp1251").split("\r\n", 1)
    rows = [row for row in body.split("\r\n") if row.startswith("IK-") and '"' not in row][:4]
    cells = rows[1].split(";")
    cells[4] = '"' + "\r\n".join(["Ж" * 99] * 1000) + '"'
    source = tmp_path / "long.csv"
    source.write_bytes("\r\n".join([head, rows[0], ";".join(cells), rows[2], rows[3], ""]).encode("utf-8"))
    mapping = Mapping.load(MAPPING)
    mapping.source["encoding"] = "utf-8"
    one = _run(schemas, source, mapping=mapping)
    assert one[0]["read"] == 4
    assert _run(schemas, source, mapping=mapping, runner=run_blocks, workers=2, block_bytes=50_000) == one
