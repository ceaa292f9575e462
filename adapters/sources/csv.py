"""Delimited text exports (CSV) in legacy code pages, streamed line by line with byte offsets.

Options (mapping ``source:`` block or ``-o key=value``): ``encoding`` (default or ``auto``: decided on the whole
file, with the evidence in the run's notes, see :func:`adapters.encoding.decide_chunks`), ``delimiter``
(default ``,``; CIS exports mostly use ``;``, and ``csv.Sniffer`` guesses it wrong), ``quotechar``,
``skip_lines`` (title lines above the header).

    $ qala adapt run csv examples/legacy/ikomek-109-astana.csv --mapping examples/legacy/ikomek-109-astana.yaml
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import io
import itertools
import operator
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

from adapters.encoding import (
    KZ_EVIDENCE,
    SUPPORTED,
    Decision,
    canonical_name,
    check_declared,
    decide_chunks,
    detect_encoding,
    file_chunks,
    what_it_is,
)
from adapters.errors import SourceError
from adapters.mapping import Mapping
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter

SAMPLE_BYTES = 1 << 16
PIECE_BYTES = 1 << 18
"""Bytes of the body decoded at once by a single process."""
RAN_OUT = Reason("malformed-csv", "the input ends inside a quoted field (an unclosed quote or a truncated file)")
"""The problem of a record that runs out of input: at the end of a file, or past a block cut in a wrong place."""


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
    """Every cell is a ``str`` (csv.reader makes nothing else): the compiled mapping skips its type tests, and
    worker processes can get rows as JSON."""
    RAN_OUT: ClassVar[Reason] = RAN_OUT

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        super().__init__(source, mapping, options)
        self.notes: list[str] = []
        """The encoding chosen and why, when it was not declared."""
        self._decision: Decision | None = None
        self.guard = b""
        """Bytes that must not occur in a file read as declared (cp1251: those that are Kazakh letters in kz1048)."""

    def _encoding(self, sample: bytes) -> str:
        kind = what_it_is(sample)
        if kind is not None:
            raise SourceError(f"{self.source}: not a CSV text file but {kind}")
        declared = self.option("encoding")
        if declared is None or str(declared).lower() == "auto":
            if self._decision is None:
                self._decision = decide_chunks(sample, file_chunks(self.source))
                self.notes.append(self._decision.note())
            return self._decision.encoding
        name = canonical_name(str(declared))
        check_declared(sample, name)
        if name == "cp1251":  # declared, so not scanned ahead: each piece is checked as it is read (see _Window)
            self.guard = KZ_EVIDENCE
        if name == "utf-8" and sample.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"  # Excel's "CSV UTF-8" starts with a byte-order mark, which is no part of the header
        return name

    def rows(self) -> Iterator[Record]:
        with self._open() as (stream, encoding, sample):
            lines = self._header(stream, encoding, sample)
            yield from self._records(_pieces(stream, PIECE_BYTES), lines.number + 1, lines.offset)

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

    def blocks(
        self, size: int, start: tuple[int, int] | None = None, *, guess: bool = True
    ) -> Iterator[tuple[bytes, int, int, bool]]:
        """The body as byte blocks of about ``size`` that each end where a record ends, with the line number and
        byte offset each starts at and whether it is a guess; reads the header (and binds the mapping) first,
        or starts at ``start`` (line, offset), which must be where a record starts.

        :mod:`adapters.parallel` hands the blocks to worker processes, which read them with
        :meth:`block_rows`; the records are exactly those :meth:`rows` gives, as long as each block ends
        where a record ends. Two ways find such an end:

        - the guess (with ``guess``): the last line end with an even number of quote characters before it in
          the block, found by two byte scans. It is right unless a field holds a lone quote mark that
          ``csv.reader`` reads as a plain character, and :meth:`block_rows` tells when it was wrong: its
          last record then runs out of input (see :data:`RAN_OUT`), and the caller asks again from that
          record's start with ``guess=False``;
        - the exact way, when there is no guess to make or guessing is off: ``csv.reader`` itself, run over
          the block's whole lines decoded as :meth:`rows` decodes them, says where its last complete record
          ends (:meth:`_last_boundary`).

        Both find line ends by their byte: every encoding :meth:`splittable` admits spells the line feed, the
        quote and the delimiter with their single ASCII byte, and uses those bytes for nothing else.
        """
        with open(self.source, "rb") as stream:
            for length, line, offset, guessed in self.cuts(size, start, guess=guess):
                stream.seek(offset)
                yield stream.read(length), line, offset, guessed

    def cuts(
        self, size: int, start: tuple[int, int] | None = None, *, guess: bool = True
    ) -> Iterator[tuple[int, int, int, bool]]:
        """What :meth:`blocks` gives, less the bytes: the length of each block instead, for a caller whose
        workers read the blocks themselves. The file is read into one buffer, reused: a fresh ``bytes`` of a
        block's size for every read, and the copies made cutting it, cost the parent some 0.25 µs a row of
        the bench's file (a new megabyte is new memory)."""
        quote = str(self.option("quotechar", '"')).encode("ascii")
        with self._open() as (stream, encoding, sample):
            if start is None:
                lines = self._header(stream, encoding, sample)
                line, offset = lines.number + 1, lines.offset
            else:
                line, offset = start
                stream.seek(offset)
            buffer = bytearray(2 * size)
            held = 0  # bytes of the buffer read and not yet in a block
            while True:
                if len(buffer) < held + size:
                    buffer.extend(bytes(held + size - len(buffer)))
                with memoryview(buffer) as view:
                    read = stream.readinto(view[held : held + size])
                end = held + read
                guessed = False
                if not read:
                    cut = end
                else:
                    cut = _even_cut(buffer, quote, end) if guess else 0
                    guessed = cut > 0
                    cut = cut or self._last_boundary(bytes(buffer[:end]))
                if not cut and end > 8 * size:  # a quote left open: the rest is one record, as in rows()
                    rest = stream.read()
                    buffer[end:] = rest
                    end += len(rest)
                    read, cut = 0, end
                if cut:
                    self._done = offset + cut
                    yield cut, line, offset, guessed
                    line += buffer.count(b"\n", 0, cut)
                    offset += cut
                if not read:
                    return
                buffer[: end - cut] = buffer[cut:end]
                held = end - cut

    def block_rows(self, block: bytes, line: int, offset: int) -> BlockRows:
        """The records of a block from :meth:`blocks`, with positions in the whole file, for a worker that
        makes a :class:`Record` of a row only when it rejects it (see :class:`BlockRows`)."""
        return BlockRows(self, block, line, offset)

    def _last_boundary(self, block: bytes) -> int:
        """Bytes of ``block`` up to the end of its last complete record (0 when none ends in it), by running
        ``csv.reader`` over the block's whole lines decoded as :meth:`rows` decodes them: a field's length, which
        csv.reader limits, is counted in characters, not bytes."""
        whole = block[: block.rfind(b"\n") + 1]  # csv.reader ends a record only at a line's end
        window = _Window(self.encoding, 1)
        try:
            collections.deque(self._reader(window.lines([whole])), maxlen=0)  # the common case, all in C
            return len(whole)
        except csv.Error:  # a record runs on past the block, or a malformed one: walk record by record
            pass
        window = _Window(self.encoding, 1)
        reader = self._reader(window.lines([whole]))
        records_end = 0
        while True:
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error:
                if window.exhausted:  # the last record runs on past the block
                    break
                # else a malformed record, which ends at its line's end: the worker reports it, as rows() would
            records_end = reader.line_num
        return sum(window.sizes[:records_end])  # the window keeps every line: nothing moved its keep

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[io.BufferedReader, str, bytes]]:
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

    def _header(self, stream: IO[bytes], encoding: str, sample: bytes) -> _Lines:
        """Read the header (after ``skip_lines``) and bind the mapping; the lines read, for where the body starts."""
        lines = _Lines(stream, encoding)
        for _ in range(int(self.option("skip_lines", 0))):
            next(lines, None)
        reader = self._reader(lines)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            cr_alone = any("\r" in line.rstrip("\r\n") for line in lines.pending)
            hint = "; its lines end in CR alone: save it with CRLF or LF line ends" if cr_alone else ""
            raise SourceError(f"{self.source}: the header is not valid CSV ({exc}){hint}") from exc
        if header is None:
            raise SourceError(f"{self.source}: no header line")
        if lines.bad_line:
            raise SourceError(
                f"{self.source}: the header is not valid {encoding} ({lines.bad_message}); "
                f"the bytes look like {detect_encoding(sample)}"
            )
        self.bind(header)
        return lines

    def _records(self, pieces: Iterable[bytes], line: int, offset: int) -> Iterator[Record]:
        """The records of the body, given as consecutive pieces that end at line ends (the last one may not),
        the first starting at ``line`` and byte ``offset``.

        One ``csv.reader`` runs over the lines of all pieces, so a record may run from one piece into the next.
        Each piece is decoded at once and its lines are handed to the reader from C; a record's raw text and
        byte offset come from the lines it took (``reader.line_num``), held in a :class:`_Window`.
        """
        file = str(self.source)
        width = self.width
        window = _Window(self.encoding, line, self.guard)
        reader = self._reader(window.lines(pieces))
        before = line - 1  # the reader counts lines from 1
        texts, sizes, first = window.texts, window.sizes, window.first
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                cells = None
                problem = RAN_OUT if window.exhausted else Reason("malformed-csv", f"not valid CSV: {exc}")
            end = before + reader.line_num
            if window.texts is not texts:  # the reader has taken a new piece
                texts, sizes, first = window.texts, window.sizes, window.first
            i = line - first
            if end == line:
                raw, size = texts[i].rstrip("\r\n"), sizes[i]
            else:
                raw, size = "\n".join(texts[i : end - first + 1]).rstrip("\r\n"), sum(sizes[i : end - first + 1])
            if cells is None:
                record = Record(Position(file, line, None, None, offset), raw, [], [problem])
            elif not cells:  # a blank line is no record
                offset += size
                window.keep = line = end + 1
                continue
            else:
                record = Record(Position(file, line, None, None, offset), raw, cells, [])
                if window.bad:
                    self._undecodable(record, window.bad, line, end)
                if len(cells) != width:
                    self.check_width(record, cells)
            self._done = offset = offset + size
            window.keep = line = end + 1
            yield record

    @staticmethod
    def _undecodable(record: Record, bad: dict[int, str], line: int, end: int) -> None:
        """Flag a record with a line that did not decode (the message of the last such line)."""
        messages = [bad[n] for n in range(line, end + 1) if n in bad]
        if messages:
            record.problems.append(Reason("undecodable", messages[-1]))


class BlockRows:
    """The records of one block, as :meth:`CsvAdapter.rows` would give them, at less cost per row.

    Iterating gives each row that has no problem as ``(cells, first line, last line)``, and each that has one
    as a :class:`Record` with its problems; :meth:`record` makes the full record of a row given as cells (its
    position and raw text), which a worker asks for only when it rejects the row: almost every row is accepted
    without one, and making one for every row cost a worker some 15% of its time (in one process over a
    block of 5,000 rows, 11 µs a row against 9). A block that does not decode at once, for a bad byte, is read as
    :meth:`CsvAdapter.rows` reads it, which finds the lines at fault; all its records come as :class:`Record`.
    """

    def __init__(self, adapter: CsvAdapter, block: bytes, line: int, offset: int) -> None:
        self.adapter = adapter
        self.block = block
        self.line = line
        self.offset = offset
        self.decoder = _body_decoder(adapter.encoding)
        self.starts: list[int] | None = None
        """The bytes before each line of the block, line feeds aside; worked out when a record first needs it."""
        self.exhausted = False

    def __iter__(self) -> Iterator[tuple[list[str], int, int] | Record]:
        adapter = self.adapter
        try:
            text = self.block.decode(self.decoder)
        except UnicodeDecodeError:
            yield from adapter._records([self.block], self.line, self.offset)
            return
        if adapter.guard and any(bytes([b]) in self.block for b in adapter.guard):  # mojibake: find its lines
            yield from adapter._records([self.block], self.line, self.offset)
            return
        # Lines end at a line feed and nothing else, untranslated, as _Window gives them: the same records.
        reader = adapter._reader(itertools.chain(io.StringIO(text, newline="\n"), self._end()))
        before = first = self.line
        before -= 1  # the reader counts lines from 1
        width = adapter.width
        while True:  # a loop around the for loop, which a record that is not valid CSV breaks
            try:
                for cells in reader:
                    last = before + reader.line_num
                    if len(cells) == width:
                        yield cells, first, last
                    elif cells:  # else a blank line, which is no record
                        record = self.record(cells, first, last)
                        adapter.check_width(record, cells)
                        yield record
                    first = last + 1
                return
            except csv.Error as exc:
                problem = RAN_OUT if self.exhausted else Reason("malformed-csv", f"not valid CSV: {exc}")
                last = before + reader.line_num
            yield self.record([], first, last, [problem])  # and the reader goes on from the next line
            first = last + 1

    def _end(self) -> Iterator[str]:
        self.exhausted = True
        yield from ()

    def record(self, cells: list[str], first: int, last: int, problems: list[Reason] | None = None) -> Record:
        """The record of the row on lines ``first`` to ``last``, as :meth:`CsvAdapter.rows` would give it."""
        if self.starts is None:  # where each line starts, less the line feeds before it
            self.starts = list(itertools.accumulate(map(len, self.block.split(b"\n")), initial=0))
        i, j = first - self.line, last - self.line
        start, end = self.starts[i] + i, self.starts[j + 1] + j + 1  # its first byte, and past its line feed
        raw = self.block[start:end].decode(self.decoder).rstrip("\r\n")
        position = Position(str(self.adapter.source), first, None, None, self.offset + start)
        return Record(position, raw, cells, problems if problems is not None else [])


def _body_decoder(encoding: str) -> str:
    """The codec for the body of a file in ``encoding``: a byte-order mark means something only at the start of
    the file, which is the header's."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _even_cut(block: bytes | bytearray, quote: bytes, size: int | None = None) -> int:
    """Bytes of ``block`` (its first ``size``) up to its last line end with an even number of ``quote`` before
    it; 0 when none."""
    end = block.rfind(b"\n", 0, len(block) if size is None else size) + 1
    quotes = block.count(quote, 0, end)
    while end and quotes % 2:
        before = block.rfind(b"\n", 0, end - 1) + 1
        quotes -= block.count(quote, before, end)
        end = before
    return end


def _pieces(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """The rest of ``stream`` in pieces of about ``size`` bytes that end at a line end (the last may not).

    Reads without a line feed are kept in a list and joined once, so that a file with none (CR line ends, say)
    costs a copy of itself rather than one per read."""
    carry: list[bytes] = []
    while data := stream.read(size):
        cut = data.rfind(b"\n") + 1
        if not cut:
            carry.append(data)
            continue
        yield b"".join([*carry, data[:cut]]) if carry else data[:cut]
        carry = [data[cut:]] if cut < len(data) else []
    if carry:
        yield b"".join(carry)


class _Window:
    """The decoded lines of the pieces a CSV body is read in, from the start of the record being read on.

    :meth:`lines` gives ``csv.reader`` the lines (with their line feeds) through C iterators, and while it
    takes a new piece, drops the lines before :attr:`keep`. A piece that does not decode at once is decoded
    line by line, and its bad lines are kept in :attr:`bad` with what was wrong, as text with the bad bytes
    escaped.
    """

    def __init__(self, encoding: str, line: int, guard: bytes = b"") -> None:
        self.encoding = encoding
        self.guard = [bytes([b]) for b in guard]
        self.decoder = _body_decoder(encoding)
        self.first = line
        """The number of the line ``texts[0]``."""
        self.keep = line
        """The first line still needed: where the record being read starts."""
        self.texts: list[str] = []
        """The lines without their line feed."""
        self.sizes: list[int] = []
        """Their lengths in bytes, with the line feed."""
        self.bad: dict[int, str] = {}
        self.exhausted = False
        """Whether the reader has asked for a line after the last."""

    def lines(self, pieces: Iterable[bytes]) -> Iterator[str]:
        return itertools.chain(itertools.chain.from_iterable(map(self._take, pieces)), self._end())

    def _end(self) -> Iterator[str]:
        self.exhausted = True
        yield from ()

    def _take(self, piece: bytes) -> Iterator[str]:
        parts = piece.split(b"\n")
        try:
            texts = piece.decode(self.decoder).split("\n")
        except UnicodeDecodeError:
            texts = [self._decode(part, self.first + len(self.texts) + n) for n, part in enumerate(parts)]
        if self.guard and any(b in piece for b in self.guard):  # a few memchr calls a piece
            self._mojibake(parts, self.first + len(self.texts))
        sizes = [size + 1 for size in map(len, parts)]
        tail = texts.pop()  # after the last line feed: empty, unless the file ends without one
        sizes[-1] -= 1
        if not tail:
            sizes.pop()
        drop = self.keep - self.first
        if self.bad:
            self.bad = {n: message for n, message in self.bad.items() if n >= self.keep}
        self.texts = self.texts[drop:] + texts
        self.sizes = self.sizes[drop:] + sizes
        self.first = self.keep
        lines = map(operator.add, texts, itertools.repeat("\n"))
        if tail:
            self.texts.append(tail)
            return itertools.chain(lines, (tail,))
        return lines

    def _mojibake(self, parts: list[bytes], first: int) -> None:
        """Flag the lines of a piece that hold bytes the declared cp1251 reads as Ќ/ќ/Ј/ј/Ѕ/ѕ/Ћ/ћ: KZ-1048's
        Kazakh letters, which would leave as mojibake."""
        for n, part in enumerate(parts):
            found = [b for b in self.guard if b in part]
            if found:
                shown = ", ".join(f"{b[0]:#04x} {b.decode('kz1048')!r} read as {b.decode('cp1251')!r}" for b in found)
                self.bad[first + n] = (
                    f"the file is declared {self.encoding}, but this line holds Kazakh letters in kz1048 ({shown}); "
                    "declare encoding kz1048"
                )

    def _decode(self, part: bytes, number: int) -> str:
        try:
            return part.decode(self.decoder)
        except UnicodeDecodeError as exc:
            self.bad[number] = f"bytes {part[exc.start : exc.end]!r} are not valid {self.encoding}"
            return part.decode(self.decoder, errors="backslashreplace")
