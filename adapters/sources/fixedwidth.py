"""Fixed-width mainframe and billing dumps: byte offsets first, then decoding.

Offsets count bytes, not characters, so each field is sliced from the raw line and decoded on its own (a
UTF-8 or multi-byte column would shift every later field if the line were decoded first). The layout lives in
the mapping's ``source:`` block; the mapping's columns are the layout's names::

    source:
      encoding: cp866
      skip_lines: 2                 # banner lines above the data
      skip_matching: ["^ИТОГО", "^-+$", "^\f?АО АСТАНА"]   # totals, rules, page banners wherever they are
      skip_footer: 1                # lines at the end that are no records (a record count, say)
      layout:                       # name: [first byte (0-based), width]
        account: [0, 10]
        obis: [10, 12]

``skip_matching`` takes regular expressions searched in each decoded line (without its line end); the lines
skipped by it and by ``skip_footer`` are counted in the run's notes, so that nothing leaves without a trace.

    $ qala adapt run fixed-width examples/legacy/meters-astana.txt --mapping examples/legacy/meters-astana.yaml
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from adapters.encoding import canonical_name
from adapters.errors import MappingError, SourceError
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter


class FixedWidthAdapter(TabularAdapter):
    """A fixed-width text dump mapped by a byte layout; see :mod:`adapters.sources.fixedwidth`."""

    name = "fixed-width"
    summary = "Fixed-width dump (byte offsets, then decode), mapped by a YAML mapping with a layout"
    notes: list[str]

    def _layout(self) -> list[tuple[str, int, int]]:
        layout = self.option("layout")
        if not isinstance(layout, dict) or not layout:
            raise MappingError(f"{self.mapping.origin}: fixed-width needs source.layout: {{name: [start, width]}}")
        out = []
        for name, span in layout.items():
            if not (isinstance(span, list) and len(span) == 2 and all(isinstance(n, int) and n >= 0 for n in span)):
                raise MappingError(f"{self.mapping.origin}: layout {name!r} must be [start, width] in bytes")
            out.append((str(name), span[0], span[1]))
        return out

    def rows(self) -> Iterator[Record]:
        layout = self._layout()
        encoding = canonical_name(str(self.option("encoding", "utf-8")))
        record_width = max(start + width for _, start, width in layout)
        self.bind([name for name, _, _ in layout])
        patterns = self._patterns()
        path = Path(self.source)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
        self._total = path.stat().st_size
        skip = int(self.option("skip_lines", 0))
        footer = int(self.option("skip_footer", 0))
        self.notes = []
        matched = 0
        offset = 0
        with stream:
            for number, line, start_offset in _without_footer(_numbered(stream), footer, self.notes):
                offset = start_offset + len(line)
                self._done = offset
                data = line.rstrip(b"\r\n")
                if number <= skip or not data.strip():
                    continue
                if patterns and any(p.search(data.decode(encoding, errors="replace")) for p in patterns):
                    matched += 1
                    continue
                values: list[str | None] = []
                problems: list[Reason] = []
                for name, start, width in layout:
                    try:
                        values.append(data[start : start + width].decode(encoding).strip() or None)
                    except UnicodeDecodeError as exc:
                        values.append(None)
                        problems.append(Reason("undecodable", f"{name}: not valid {encoding}: {exc.reason}", name))
                if len(data) < record_width and len(data.rstrip()) < max(s for _, s, _ in layout):
                    problems.insert(0, Reason("short-row", f"{len(data)} bytes where the layout needs {record_width}"))
                raw = data.decode(encoding, errors="replace")
                yield Record(Position(str(path), line=number, byte_offset=start_offset), raw, values, problems)
        if matched:
            self.notes.append(f"skipped {matched} line(s) matching source.skip_matching")

    def _patterns(self) -> list[re.Pattern[str]]:
        patterns = self.option("skip_matching") or []
        if isinstance(patterns, str):
            patterns = [patterns]
        try:
            return [re.compile(str(p)) for p in patterns]
        except re.error as exc:
            raise MappingError(f"{self.mapping.origin}: source.skip_matching: not a regular expression: {exc}") from exc


def _numbered(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """Each line with its 1-based number and the byte offset it starts at."""
    offset = 0
    for number, line in enumerate(stream, start=1):
        yield number, line, offset
        offset += len(line)


def _without_footer(
    lines: Iterator[tuple[int, bytes, int]], footer: int, notes: list[str]
) -> Iterator[tuple[int, bytes, int]]:
    """All but the last ``footer`` non-blank lines (blank lines at the very end do not count)."""
    if footer <= 0:
        yield from lines
        return
    held: collections.deque[tuple[int, bytes, int]] = collections.deque()
    for item in lines:
        held.append(item)
        while sum(1 for _, line, _ in held if line.strip()) > footer:
            yield held.popleft()
    dropped = [number for number, line, _ in held if line.strip()]
    if dropped:
        notes.append(f"skipped the last {len(dropped)} line(s) (source.skip_footer), from line {dropped[0]}")
