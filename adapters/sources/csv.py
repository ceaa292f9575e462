"""Delimited text exports (CSV) in legacy code pages, streamed line by line with byte offsets.

Options (mapping ``source:`` block or ``-o key=value``): ``encoding`` (default: detected), ``delimiter``
(default ``,``; CIS exports mostly use ``;``, and ``csv.Sniffer`` guesses it wrong), ``quotechar``,
``skip_lines`` (title lines above the header).

    $ qala adapt run csv examples/legacy/ikomek-109-astana.csv --mapping examples/legacy/ikomek-109-astana.yaml
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from adapters.encoding import SUPPORTED, canonical_name, check_declared, detect_encoding
from adapters.errors import SourceError
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter

SAMPLE_BYTES = 1 << 16


class _Lines:
    """Decodes a binary stream line by line for csv.reader, remembering offsets and undecodable lines."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self.stream = stream
        self.encoding = encoding
        self.number = 0
        self.offset = 0
        self.bad_line = 0
        self.bad_message = ""
        self.pending: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.stream.readline()
        if not raw:
            raise StopIteration
        self.number += 1
        self.offset += len(raw)
        try:
            line = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            line = raw.decode(self.encoding, errors="backslashreplace")
            self.bad_line = self.number
            self.bad_message = f"bytes {raw[exc.start : exc.end]!r} are not valid {self.encoding}"
        self.pending.append(line)
        return line


class CsvAdapter(TabularAdapter):
    """A CSV export mapped column by column; see :mod:`adapters.sources.csv`."""

    name = "csv"
    summary = "Delimited text export (cp1251, kz1048, cp866, UTF-8), mapped by a YAML mapping"
    text_cells = True
    """Every cell is a ``str`` (csv.reader makes nothing else), so worker processes can get rows as JSON."""

    def _encoding(self, sample: bytes) -> str:
        declared = self.option("encoding")
        if declared is None or str(declared).lower() == "auto":
            return detect_encoding(sample)
        name = canonical_name(str(declared))
        check_declared(sample, name)
        return name

    def rows(self) -> Iterator[Record]:
        with self._open() as (stream, encoding, sample):
            lines, reader = self._header(stream, encoding, sample)
            yield from self._body(lines, reader)

    def splittable(self) -> bool:
        """Whether :meth:`blocks` may cut this source: the quote and delimiter are ASCII, and the encoding one
        of :data:`~adapters.encoding.SUPPORTED` (each spells ASCII with the ASCII bytes and nothing else)."""
        marks = (str(self.option("delimiter", ",")), str(self.option("quotechar", '"')))
        if not all(mark.isascii() for mark in marks):
            return False
        declared = self.option("encoding")
        if declared is None or str(declared).lower() == "auto":
            return True  # detection picks one of SUPPORTED
        try:
            return canonical_name(str(declared)) in {canonical_name(name) for name in SUPPORTED}
        except SourceError:
            return False

    def blocks(self, size: int) -> Iterator[tuple[bytes, int, int]]:
        """The body as byte blocks of about ``size`` that each end where a record ends, with the line number and
        byte offset each starts at; reads the header (and binds the mapping) before the first.

        :mod:`adapters.parallel` hands the blocks to worker processes, which read them with
        :meth:`block_records`; the records are exactly those :meth:`rows` gives. A block is cut where
        ``csv.reader`` itself, run over the block's lines, finished a record, so a quoted line break never
        splits a record. The lines are decoded as Latin-1 for that: one character per byte, and every
        supported encoding spells quote, delimiter and line feed with the same single ASCII byte.
        """
        with self._open() as (stream, encoding, sample):
            lines, _ = self._header(stream, encoding, sample)
            line, offset = lines.number + 1, lines.offset
            carry = b""
            while True:
                data = stream.read(size)
                block = carry + data
                cut = len(block) if not data else self._last_boundary(block)
                if not cut and len(block) > 8 * size:  # a quote left open: the rest is one record, as in rows()
                    block += stream.read()
                    data, cut = b"", len(block)
                if cut:
                    self._done = offset + cut
                    yield block[:cut], line, offset
                    line += block.count(b"\n", 0, cut)
                    offset += cut
                if not data:
                    return
                carry = block[cut:]

    def block_records(self, block: bytes, line: int, offset: int) -> Iterator[Record]:
        """The records of a block from :meth:`blocks`, with positions in the whole file."""
        lines = _Lines(io.BytesIO(block), self.encoding)
        lines.number, lines.offset = line - 1, offset
        yield from self._body(lines, self._reader(lines))

    def _last_boundary(self, block: bytes) -> int:
        """Bytes of ``block`` up to the end of its last complete record (0 when none ends in it)."""
        lines = block.decode("latin-1").split("\n")[:-1]  # whole lines; csv.reader ends a record at a line's end
        reader = self._reader(iter(lines))
        try:
            collections.deque(reader, maxlen=0)  # the common case, all in C: every line ends a record
            records_end = len(lines)
        except csv.Error:  # a record runs on past the block, or a malformed one: walk record by record
            reader = self._reader(iter(lines))
            records_end = 0
            while True:
                try:
                    next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    if reader.line_num >= len(lines):  # the last record runs on past the block
                        break
                    continue  # a malformed record: the worker reports it, as rows() would
                records_end = reader.line_num
        return sum(map(len, lines[:records_end])) + records_end  # and a line feed for each line

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[IO[bytes], str, bytes]]:
        path = Path(self.source)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
        with stream:
            self._total = path.stat().st_size
            sample = stream.read(SAMPLE_BYTES)
            stream.seek(0)
            self.encoding = self._encoding(sample)
            yield stream, self.encoding, sample

    def _reader(self, lines: Iterator[str]) -> Any:
        delimiter = str(self.option("delimiter", ","))
        return csv.reader(lines, delimiter=delimiter, quotechar=str(self.option("quotechar", '"')), strict=True)

    def _header(self, stream: IO[bytes], encoding: str, sample: bytes) -> tuple[_Lines, Any]:
        lines = _Lines(stream, encoding)
        for _ in range(int(self.option("skip_lines", 0))):
            next(lines, None)
        reader = self._reader(lines)
        header = next(reader, None)
        if header is None:
            raise SourceError(f"{self.source}: no header line")
        if lines.bad_line:
            raise SourceError(
                f"{self.source}: the header is not valid {encoding} ({lines.bad_message}); "
                f"the bytes look like {detect_encoding(sample)}"
            )
        self.bind(header)
        return lines, reader

    def _body(self, lines: _Lines, reader: Any) -> Iterator[Record]:
        file = str(self.source)
        start_line, start_offset = lines.number + 1, lines.offset
        pending = lines.pending
        pending.clear()
        width = self.width
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                cells = None
                problem = Reason("malformed-csv", f"{exc} (an unclosed quote or a truncated file)")
            position = Position(file, start_line, None, None, start_offset)
            raw = (pending[0] if len(pending) == 1 else "".join(pending)).rstrip("\r\n")
            if cells is None:
                record = Record(position, raw, [], [problem])
            elif not cells:  # a blank line is no record
                start_line, start_offset = lines.number + 1, lines.offset
                pending.clear()
                continue
            else:
                record = Record(position, raw, cells, [])
                if lines.bad_line >= start_line:
                    record.problems.append(Reason("undecodable", lines.bad_message))
                if len(cells) != width:
                    self.check_width(record, cells)
            self._done = start_offset = lines.offset
            start_line = lines.number + 1
            pending.clear()
            yield record
