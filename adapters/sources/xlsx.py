"""Excel workbooks (XLSX): a name for :class:`~adapters.sources.spreadsheet.SpreadsheetAdapter`, which reads
XLSX, XLS and ODS alike with python-calamine (see there for the options).

    $ qala adapt run xlsx examples/legacy/almaty-109.xlsx --mapping examples/legacy/almaty-109.yaml
"""

from __future__ import annotations

from adapters.sources.spreadsheet import SpreadsheetAdapter, combine_header

__all__ = ["XlsxAdapter", "combine_header"]


class XlsxAdapter(SpreadsheetAdapter):
    """An XLSX sheet mapped column by column; see :mod:`adapters.sources.spreadsheet`."""

    name = "xlsx"
    summary = "Excel workbook (XLSX), merged and multi-row headers, mapped by a YAML mapping"
