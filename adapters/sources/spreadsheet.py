"""Spreadsheets of every kind cities export: Excel 2007+ (XLSX), Excel 97-2003 (XLS) and OpenDocument (ODS).

One reader, python-calamine (Rust), reads all three the same way, so a register saved as ``.xls`` or ``.ods``
gives the same entities as its ``.xlsx`` form. Options: ``sheet`` (name or 1-based index; default the first
*visible* sheet, and the choice is reported with the hidden ones it passed over), ``header_row`` (1-based sheet
row of the header's first row, default 1), ``header_rows`` (how many rows the header spans, default 1).

A header cell merged across several columns is carried rightwards over the empty cells that have a sub-header
below them (see :func:`combine_header`): ``Заявитель`` over ``ФИО | Телефон`` gives the columns
``Заявитель / ФИО`` and ``Заявитель / Телефон``, which a mapping can name in full or by the last part.

    $ qala adapt run xls examples/legacy/almaty-109.xls --mapping examples/legacy/almaty-109.yaml
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import python_calamine as calamine

from adapters.errors import SourceError
from adapters.records import Position, Record
from adapters.tabular import TabularAdapter

KINDS = {b"PK\x03\x04": "a ZIP archive (XLSX or ODS)", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an OLE2 file (XLS)"}
"""The first bytes of the containers spreadsheets come in, to say what a file really is."""


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


def json_cell(value: Any) -> Any:
    """A cell as it goes into the quarantine's ``raw``."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return value


def open_workbook(path: Path) -> calamine.CalamineWorkbook:
    """The workbook at ``path``; SourceError naming what the file is when it is no spreadsheet."""
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except FileNotFoundError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # calamine raises its own errors, ValueError and OSError for damaged files
        raise SourceError(f"cannot read {path} as a spreadsheet (XLSX, XLS or ODS): {exc}") from exc


def choose_sheet(workbook: calamine.CalamineWorkbook, wanted: Any, path: Path) -> tuple[str, str]:
    """The sheet to read and how it was chosen: ``wanted`` (a name or a 1-based index), else the first visible."""
    metadata = [m for m in workbook.sheets_metadata if m.typ == calamine.SheetTypeEnum.WorkSheet]
    names = [m.name for m in metadata]
    if wanted is not None:
        if str(wanted).isdigit() and 1 <= int(wanted) <= len(names) and str(wanted) not in names:
            return names[int(wanted) - 1], f"sheet {names[int(wanted) - 1]!r} (number {wanted}, as asked)"
        if str(wanted) in names:
            return str(wanted), f"sheet {wanted!r} (as asked)"
        raise SourceError(f"{path}: no sheet {wanted!r} (sheets: {names})")
    visible = [m.name for m in metadata if m.visible == calamine.SheetVisibleEnum.Visible]
    if not visible:
        raise SourceError(f"{path}: no visible worksheet (sheets: {names}); name one with -o sheet=NAME")
    hidden = names[: names.index(visible[0])]
    passed = f"; passed over hidden {hidden}" if hidden else ""
    later = names[names.index(visible[0]) + 1 :]
    others = f"; later sheets: {later}" if later else ""
    return visible[0], f"sheet {visible[0]!r}: the first visible one{passed}{others}"


class SpreadsheetAdapter(TabularAdapter):
    """A worksheet of an XLSX, XLS or ODS workbook mapped column by column; see :mod:`adapters.sources.spreadsheet`."""

    name: ClassVar[str] = "spreadsheet"
    summary: ClassVar[str] = "Spreadsheet (XLSX, XLS, ODS), merged and multi-row headers, mapped by a YAML mapping"
    kind: ClassVar[str] = "spreadsheet"

    notes: list[str]

    def rows(self) -> Iterator[Record]:
        path = Path(self.source)
        workbook = open_workbook(path)
        self.notes = []
        try:
            title, why = choose_sheet(workbook, self.option("sheet"), path)
            self.notes.append(why)
            try:
                sheet = workbook.get_sheet_by_name(title)
            except Exception as exc:  # a damaged part of the archive
                raise SourceError(f"{path}: sheet {title!r} cannot be read: {exc}") from exc
            yield from self._sheet_rows(path, sheet)
        finally:
            workbook.close()

    def _sheet_rows(self, path: Path, sheet: Any) -> Iterator[Record]:
        first, count = int(self.option("header_row", 1)), int(self.option("header_rows", 1))
        top = int(sheet.start[0]) + 1 if sheet.start else 1  # calamine starts at the first row that has a cell
        self._total = top + int(sheet.height) - 1
        file = f"{path}#{sheet.name}"
        header: list[Sequence[Any]] = []
        width = 0
        for number, cells in enumerate(sheet.iter_rows(), start=top):
            if number < first:
                continue
            if len(header) < count:
                header.append([None if c == "" else c for c in cells])
                if len(header) == count:
                    self.bind(combine_header(header))
                    width = self.width
                continue
            if all(c == "" or (c.__class__ is str and c.isspace()) for c in cells):
                continue
            self._done = number
            values = [None if c == "" else c for c in cells]
            while values and values[-1] is None and len(values) > width:
                values.pop()
            yield Record(Position(file, row=number), [json_cell(c) for c in values], values)
        if len(header) < count:
            raise SourceError(f"{path}: the sheet ends before its {count}-row header (row {first})")


class XlsAdapter(SpreadsheetAdapter):
    name = "xls"
    summary = "Excel 97-2003 workbook (XLS), merged and multi-row headers, mapped by a YAML mapping"


class OdsAdapter(SpreadsheetAdapter):
    name = "ods"
    summary = "OpenDocument spreadsheet (ODS), merged and multi-row headers, mapped by a YAML mapping"
