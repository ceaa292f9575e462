"""Delimited text exports (CSV) in legacy code pages, streamed line by line with byte offsets.

Options (mapping ``source:`` block or ``-o key=value``): ``encoding`` (default: detected), ``delimiter``
(default ``,``; CIS exports mostly use ``;``, and ``csv.Sniffer`` guesses it wrong), ``quotechar``,
``skip_lines`` (title lines above the header).

    $ qala adapt run csv examples/legacy/ikomek-109-astana.csv --mapping examples/legacy/ikomek-109-astana.yaml
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from adapters.encoding import canonical_name, check_declared, detect_encoding
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
        path = Path(self.source)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
        with stream:
            self._total = path.stat().st_size
            sample = stream.read(SAMPLE_BYTES)
            stream.seek(0)
            encoding = self._encoding(sample)
            self.encoding = encoding
            yield from self._read(stream, encoding, str(path), sample)

    def _read(self, stream: IO[bytes], encoding: str, file: str, sample: bytes) -> Iterator[Record]:
        lines = _Lines(stream, encoding)
        for _ in range(int(self.option("skip_lines", 0))):
            next(lines, None)
        delimiter = str(self.option("delimiter", ","))
        reader = csv.reader(lines, delimiter=delimiter, quotechar=str(self.option("quotechar", '"')), strict=True)
        header = next(reader, None)
        if header is None:
            raise SourceError(f"{file}: no header line")
        if lines.bad_line:
            raise SourceError(
                f"{file}: the header is not valid {encoding} ({lines.bad_message}); "
                f"the bytes look like {detect_encoding(sample)}"
            )
        self.bind(header)
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
