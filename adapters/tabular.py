"""Shared ground for tabular sources (CSV, XLSX, DBF, fixed-width, XML rows): a header, then rows of cells.

A subclass implements :meth:`TabularAdapter.rows`, calling :meth:`bind` with the header once it is known and
yielding one :class:`~adapters.records.Record` per row with the cells in ``values``; mapping is shared::

    class TsvAdapter(TabularAdapter):
        name = "tsv"
        summary = "Tab-separated export"

        def rows(self) -> Iterator[Record]:
            lines = Path(self.source).read_text().splitlines()
            self.bind(lines[0].split("\\t"))
            for n, line in enumerate(lines[1:], start=2):
                yield Record(Position(self.source, line=n), raw=line, values=line.split("\\t"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from adapters.compiled import CompiledMapping
from adapters.errors import MappingError
from adapters.mapping import Mapping
from adapters.records import Entity, Reason, Record, Rejection


class TabularAdapter:
    """Base for sources that a YAML :class:`~adapters.mapping.Mapping` maps column by column."""

    name: ClassVar[str] = "tabular"
    summary: ClassVar[str] = "tabular source"
    needs_mapping: ClassVar[bool] = True
    text_cells: ClassVar[bool] = False
    """True when every cell is a ``str`` (or missing): the compiled mapping then skips a type test per cell."""

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        if mapping is None:
            raise MappingError(f"adapter {self.name!r} needs a mapping (--mapping FILE.yaml)")
        self.source = source
        self.mapping = mapping
        self.options: dict[str, Any] = {**mapping.source, **(options or {})}
        self.compiled: CompiledMapping | None = None
        self.map_values: Callable[[Sequence[Any]], Entity | Rejection] = self._unbound
        """Map one row's cells: the compiled mapping's own function once :meth:`bind` has run."""
        self.width = 0
        self._done = 0
        self._total: int | None = None

    def option(self, key: str, default: Any = None) -> Any:
        """A reading option: the command line's ``-o key=value`` wins over the mapping's ``source:`` block."""
        return self.options.get(key, default)

    def bind(self, headers: Sequence[Any]) -> None:
        self.compiled = self.mapping.compile(headers, text_cells=self.text_cells)
        self.map_values = self.compiled.apply
        self.width = len(headers)

    def rows(self) -> Iterator[Record]:
        raise NotImplementedError

    def records(self) -> Iterator[Record]:
        return self.rows()

    def check_width(self, record: Record, cells: Sequence[Any]) -> None:
        """Flag a row whose cell count differs from the header's: the data is shifted or cut."""
        if len(cells) < self.width:
            record.problems.append(Reason("short-row", f"{len(cells)} columns where the header has {self.width}", None))
        elif len(cells) > self.width and any(c not in ("", None) for c in cells[self.width :]):
            record.problems.append(Reason("long-row", f"{len(cells)} columns where the header has {self.width}"))

    def map(self, record: Record) -> Entity | Rejection:
        return self.map_values(record.values)

    def _unbound(self, values: Sequence[Any]) -> Entity | Rejection:
        raise MappingError(f"{self.name}: no header was read")  # rows() binds before its first record

    def progress(self) -> tuple[int, int | None]:
        return self._done, self._total
