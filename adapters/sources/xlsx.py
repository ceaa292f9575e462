"""Excel workbooks (XLSX), read-only and streamed, with merged and multi-row headers.

Options: ``sheet`` (name or 1-based index, default the first), ``header_row`` (1-based first header row,
default 1), ``header_rows`` (how many rows the header spans, default 1).

Read-only mode streams the sheet but does not expose merged ranges, so a header cell merged across several
columns is carried rightwards over the empty cells that have a sub-header below them: a two-row header
``Заявитель`` over ``ФИО | Телефон`` gives the columns ``Заявитель / ФИО`` and ``Заявитель / Телефон``, which
a mapping can name either in full or by the last part.

    $ qala adapt run xlsx examples/legacy/almaty-109.xlsx --mapping examples/legacy/almaty-109.yaml
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from adapters.errors import SourceError
from adapters.records import Position, Record
from adapters.tabular import TabularAdapter


def combine_header(rows: Sequence[Sequence[Any]]) -> list[str]:
    """Join a multi-row header into one name per column.

    >>> combine_header([["№", "Заявитель", None, "Статус"], [None, "ФИО", "Телефон", None]])
    ['№', 'Заявитель / ФИО', 'Заявитель / Телефон', 'Статус']
    """
    width = max((len(r) for r in rows), default=0)
    grid = [[("" if c is None else " ".join(str(c).split())) for c in r] + [""] * (width - len(r)) for r in rows]
    bottom = grid[-1]
    for level in grid[:-1]:
        for i in range(1, width):
            if not level[i] and bottom[i] and level[i - 1]:
                level[i] = level[i - 1]  # the rest of a horizontally merged cell
    return [" / ".join(dict.fromkeys(p for p in (g[i] for g in grid) if p)) for i in range(width)]


def _json_cell(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


class XlsxAdapter(TabularAdapter):
    """An XLSX sheet mapped column by column; see :mod:`adapters.sources.xlsx`."""

    name = "xlsx"
    summary = "Excel workbook (XLSX), merged and multi-row headers, mapped by a YAML mapping"

    def rows(self) -> Iterator[Record]:
        path = Path(self.source)
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise SourceError(f"cannot read {path} as an XLSX workbook: {exc}") from exc
        try:
            sheet_option = self.option("sheet")
            if sheet_option is None:
                sheet = workbook.worksheets[0]
            elif str(sheet_option).isdigit():
                sheet = workbook.worksheets[int(sheet_option) - 1]
            else:
                sheet = workbook[str(sheet_option)]
        except (IndexError, KeyError):
            workbook.close()
            raise SourceError(f"{path}: no sheet {sheet_option!r} (sheets: {workbook.sheetnames})") from None
        first, count = int(self.option("header_row", 1)), int(self.option("header_rows", 1))
        self._total = sheet.max_row
        try:
            header: list[Sequence[Any]] = []
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number < first:
                    continue
                if len(header) < count:
                    header.append(cells)
                    if len(header) == count:
                        self.bind(combine_header(header))
                    continue
                if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                    continue
                self._done = number
                values = list(cells)
                while values and values[-1] is None and len(values) > self.width:
                    values.pop()
                yield Record(Position(f"{path}#{sheet.title}", row=number), [_json_cell(c) for c in values], values)
            if len(header) < count:
                raise SourceError(f"{path}: the sheet ends before its {count}-row header")
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{path}: the workbook is damaged: {exc}") from exc
        finally:
            workbook.close()
