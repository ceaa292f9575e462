"""``qala adapt inspect``: what a legacy export is, and a starting mapping for it.

A city IT team starts from a file and no mapping. :func:`inspect_file` says what was detected, with the evidence
(the kind of file, its encoding and why, the delimiter, where the header is, the sheets, the date forms each
column holds, a few rows), and :func:`starting_mapping` writes a mapping for it: the bundled mapping of the
target type whose header synonyms match the file best, with the column synonyms every bundled mapping of that
type knows, the reading options detected here, and only the rules whose columns the file has.

    >>> from pathlib import Path
    >>> found = inspect_file(Path("examples/legacy/ikomek-109-astana.csv"))
    >>> found.kind, found.options["encoding"], found.options["delimiter"]
    ('csv', 'cp1251', ';')
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from adapters.compiled import find_column
from adapters.conversions import normalise_key
from adapters.encoding import decide_chunks, file_chunks, what_it_is
from adapters.errors import AdapterError, SourceError
from adapters.sources.spreadsheet import choose_sheet, combine_header, open_workbook

BUNDLED = Path(__file__).resolve().parents[1] / "examples" / "legacy"
"""Where the bundled mappings are, whose header synonyms a starting mapping is made from."""
SPREADSHEETS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".ods": "ods"}
DELIMITERS = (";", ",", "\t", "|")
SAMPLE_ROWS = 3
FORMS = (
    (re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$"), "DD.MM.YYYY HH:MM:SS"),
    (re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}$"), "DD.MM.YYYY HH:MM"),
    (re.compile(r"^\d{2}\.\d{2}\.\d{4}$"), "DD.MM.YYYY"),
    (re.compile(r"^\d{2}\.\d{2}\.\d{2}$"), "DD.MM.YY"),
    (re.compile(r"^\d{2}/\d{2}/\d{4}( \d{2}:\d{2})?$"), "DD/MM/YYYY or MM/DD/YYYY"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})$"), "ISO 8601 with an offset"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$"), "YYYY-MM-DD HH:MM[:SS]"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "YYYY-MM-DD"),
)


@dataclass
class Inspection:
    """What :func:`inspect_file` found."""

    path: Path
    kind: str
    headers: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    """Data rows read to describe the columns (at most a few hundred)."""

    def date_forms(self) -> dict[str, list[str]]:
        """The date forms each column holds, for the columns that hold any."""
        out: dict[str, list[str]] = {}
        for i, header in enumerate(self.headers):
            forms: Counter[str] = Counter()
            for row in self.rows:
                value = row[i] if i < len(row) else None
                form = _date_form(value)
                if form:
                    forms[form] += 1
            if forms:
                out[header or f"column {i + 1}"] = [f"{form} ({count})" for form, count in forms.most_common()]
        return out


def _date_form(value: Any) -> str | None:
    if isinstance(value, datetime):
        return "date-time cells"
    if isinstance(value, date):
        return "date cells"
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return next((name for pattern, name in FORMS if pattern.match(text)), None)


def inspect_file(path: Path, known: Sequence[str] = ()) -> Inspection:
    """Detect how ``path`` is to be read; ``known`` header names (normalised) help find a spreadsheet's header."""
    if not path.is_file():
        raise SourceError(f"cannot open {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEETS:
        return _inspect_spreadsheet(path, SPREADSHEETS[suffix], known)
    if suffix == ".dbf":
        return _inspect_dbf(path)
    return _inspect_csv(path)


def _inspect_csv(path: Path) -> Inspection:
    with path.open("rb") as stream:
        sample = stream.read(1 << 16)
    kind = what_it_is(sample)
    if kind is not None:
        raise SourceError(f"{path}: not a CSV text file but {kind}")
    decision = decide_chunks(sample, file_chunks(path))
    text = sample.decode(decision.encoding, errors="replace")
    lines = text.splitlines(keepends=True)[:-1] or text.splitlines(keepends=True)  # the last may be cut
    delimiter, count, agree = _delimiter(lines)
    rows = list(csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter))
    skip = next((i for i, row in enumerate(rows) if len(row) == count), 0)
    found = Inspection(path, "csv", rows[skip] if rows else [], rows=rows[skip + 1 :])
    found.options = {"encoding": decision.encoding, "delimiter": delimiter}
    if skip:
        found.options["skip_lines"] = skip
    found.evidence = [
        decision.note(),
        f"delimiter {delimiter!r}: {agree} of the first {len(lines)} lines split into {count} fields with it",
        f"header on line {skip + 1}" + (f", after {skip} title line(s)" if skip else ""),
    ]
    return found


def _delimiter(lines: list[str]) -> tuple[str, int, int]:
    """The delimiter that splits the most lines into the same number (>1) of fields, with that number and how
    many lines agree; csv.Sniffer picks ',' for ``Дата;Сумма, тг`` even when told ';' is possible."""
    best = (";", 1, 0)
    for delimiter in DELIMITERS:
        counts = Counter(len(row) for row in csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter))
        if not counts:
            continue
        fields, agree = max(counts.items(), key=lambda item: (item[1], item[0]))
        if fields > 1 and agree > best[2]:
            best = (delimiter, fields, agree)
    return best


def _inspect_spreadsheet(path: Path, kind: str, known: Sequence[str]) -> Inspection:
    workbook = open_workbook(path)
    try:
        names = [m.name for m in workbook.sheets_metadata]
        title, why = choose_sheet(workbook, None, path)
        grid = [list(row) for _, row in zip(range(400), workbook.get_sheet_by_name(title).iter_rows(), strict=False)]
        start = workbook.get_sheet_by_name(title).start
    finally:
        workbook.close()
    top = int(start[0]) + 1 if start else 1
    cells = [[None if c == "" else c for c in row] for row in grid]
    first, count, headers = _spreadsheet_header(cells, known)
    found = Inspection(path, kind, headers, sheets=names, rows=cells[first + count :])
    found.options = {"sheet": title, "header_row": top + first, "header_rows": count}
    found.evidence = [
        why,
        f"header on sheet row {top + first}"
        + (f", spanning {count} rows (merged cells over sub-headers)" if count > 1 else "")
        + (f", after {first} title row(s)" if first else ""),
    ]
    return found


def _spreadsheet_header(cells: list[list[Any]], known: Sequence[str]) -> tuple[int, int, list[str]]:
    """The header's first row (0-based), its height (1 or 2) and its column names: of the text rows near the top
    that fill at least half the width, the one (or two, for merged cells over sub-headers) naming the most
    columns the bundled mappings know; the first such row when none names any."""
    width = max((sum(c is not None for c in row) for row in cells[:20]), default=0)
    options: list[tuple[int, int, int, list[str]]] = []  # (matched, -rows, -first, ...)
    for first in range(min(len(cells), 10)):
        if sum(c is not None for c in cells[first]) < max(2, width // 2):
            continue
        for count in (1, 2):
            rows = cells[first : first + count]
            if len(rows) < count or not all(isinstance(c, str) for r in rows for c in r if c is not None):
                continue
            headers = combine_header(rows)
            options.append((sum(1 for h in headers if h and _known(h, known)), -count, -first, headers))
    if not options:
        raise SourceError("no header row found: no row near the top holds text in most columns")
    _, height, top, names = max(options, key=lambda o: (o[0], o[1] if o[0] else o[2], o[2]))
    return -top, -height, names


def _known(header: str, known: Sequence[str]) -> bool:
    key = normalise_key(header)
    return key in known or key.rsplit(" / ", 1)[-1] in known


def _inspect_dbf(path: Path) -> Inspection:
    from adapters.sources.dbf import LANGUAGE_DRIVERS  # noqa: PLC0415 - dbfread only when a DBF is inspected

    try:
        from dbfread import DBF  # noqa: PLC0415

        table = DBF(str(path), load=False, encoding="ascii", ignore_missing_memofile=True)
    except Exception as exc:  # dbfread raises many kinds on a damaged header
        raise SourceError(f"{path}: not a readable DBF header: {exc}") from exc
    ldid = int(table.header.language_driver)
    found = Inspection(path, "dbf", [f.name for f in table.fields])
    encoding = LANGUAGE_DRIVERS.get(ldid)
    version = f"version byte 0x{table.header.dbversion:02x}"
    found.evidence = [
        f"encoding {encoding}: language-driver byte 0x{ldid:02x} ({version})"
        if encoding
        else f"no code page in the file (language driver 0x{ldid:02x}): declare encoding in the mapping",
        "fields: " + ", ".join(f"{f.name} {f.type}({f.length})" for f in table.fields),
    ]
    if table.memofilename:
        found.evidence.append(f"memo file {Path(table.memofilename).name}")
    return found


def bundled_mappings(folder: Path = BUNDLED) -> list[tuple[Path, dict[str, Any]]]:
    """The bundled mappings as YAML documents (those with tabular ``column`` rules)."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and isinstance(document.get("fields"), dict):
            out.append((path, document))
    return out


def _synonyms(spec: Any) -> list[str] | None:
    if isinstance(spec, list | str):
        spec = {"column": spec}
    if isinstance(spec, dict) and "column" in spec:
        column = spec["column"]
        return [str(c) for c in (column if isinstance(column, list) else [column])]
    return None


def _groups(spec: Any) -> list[list[str]]:
    """Every list of column synonyms a rule reads: one for ``column``, one per part of ``point`` and ``collect``."""
    synonyms = _synonyms(spec)
    if synonyms is not None:
        return [synonyms]
    if isinstance(spec, dict):
        for kind in ("point", "collect"):
            if isinstance(spec.get(kind), dict):
                return [[str(n) for n in (g if isinstance(g, list) else [g])] for g in spec[kind].values()]
    return []


def known_headers(mappings: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Every header name the bundled mappings know, normalised."""
    return [
        normalise_key(name)
        for _, document in mappings
        for spec in document["fields"].values()
        for group in _groups(spec)
        for name in group
    ]


def starting_mapping(
    found: Inspection, mappings: list[tuple[Path, dict[str, Any]]], type_name: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A mapping document for ``found`` and what was decided making it (which bundled mapping, which columns)."""
    headers = [normalise_key(h) if h is not None else "" for h in found.headers]
    candidates = [(p, d) for p, d in mappings if type_name is None or d.get("type") == type_name]
    if not candidates:
        known = sorted({str(d.get("type")) for _, d in mappings})
        raise AdapterError(f"no bundled mapping of type {type_name!r} to start from (types: {', '.join(known)})")

    def score(document: dict[str, Any]) -> float:
        columns = [s for s in map(_synonyms, document["fields"].values()) if s]
        hits = sum(1 for s in columns if find_column(headers, s) is not None)
        return hits / max(len(columns), 1) + hits / 1000  # share of its columns found; more hits break ties

    origin, chosen = max(candidates, key=lambda item: score(item[1]))
    if score(chosen) < 0.01:
        raise AdapterError(
            f"{found.path}: read as {found.kind}, no header matches a bundled mapping's columns; write the mapping by "
            "hand (inspect reads CSV, XLSX, XLS, ODS and DBF exports with a header, not fixed-width dumps or XML)"
        )
    pool: dict[str, list[str]] = {}
    for _, document in mappings:
        if document.get("type") == chosen.get("type"):
            for target, spec in document["fields"].items():
                for name in _synonyms(spec) or []:
                    pool.setdefault(target, [])
                    if name not in pool[target]:
                        pool[target].append(name)
    document = copy.deepcopy(chosen)
    document["source"] = dict(found.options)
    fields: dict[str, Any] = {}
    dropped: list[str] = []
    for target, spec in chosen["fields"].items():
        synonyms = _synonyms(spec)
        if synonyms is None:
            fields[target] = copy.deepcopy(spec)
            continue
        names = synonyms + [n for n in pool.get(target, []) if n not in synonyms]
        if find_column(headers, names) is None:
            dropped.append(target)
            continue
        rule = {"column": names} if not isinstance(spec, dict) else {**copy.deepcopy(spec), "column": names}
        fields[target] = rule
    document["fields"] = fields
    used = {find_column(headers, group) for spec in fields.values() for group in _groups(spec)}
    unknown = [h for i, h in enumerate(found.headers) if i not in used and h]
    notes = [f"started from {origin.name} (type {chosen['type']})"]
    if dropped:
        notes.append(f"left out, no such column: {', '.join(dropped)}")
    if unknown:
        notes.append(f"columns no rule reads (add rules for them): {', '.join(map(str, unknown))}")
    return document, notes


def dump_mapping(document: dict[str, Any], found: Inspection, notes: list[str]) -> str:
    """The mapping as YAML, headed by comments saying what was detected and decided."""
    head = [f"# Made by `qala adapt inspect {found.path.name}`: review it before production use."]
    head += [f"# {line}" for line in found.evidence + notes]
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=None, width=110)
    return "\n".join(head) + "\n" + body
