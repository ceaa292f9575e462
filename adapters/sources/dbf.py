"""dBase (DBF) tables from old registries and payment systems, with the code page from the file or the mapping.

The header is read with dbfread; records are read here one by one so that each keeps its record number and
byte offset, a field that does not parse rejects only its record, and a file cut short is noticed. Numeric
fields become ``Decimal`` (never float), so money stays exact. Deleted records are skipped.

Options: ``encoding`` (wins over the language-driver byte and a ``.cpg`` file; one of them is needed).

    $ qala adapt run dbf examples/legacy/onay-payments.dbf --mapping examples/legacy/onay-payments.yaml
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dbfread import DBF
from dbfread.exceptions import DBFNotFound

from adapters.encoding import canonical_name
from adapters.errors import SourceError
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter

LANGUAGE_DRIVERS = {0x26: "cp866", 0x65: "cp866", 0x66: "cp865", 0xC9: "cp1251", 0x57: "cp1252", 0x03: "cp1252"}


def parse_field(kind: str, data: bytes, encoding: str) -> Any:
    """One DBF field value; raises ValueError/UnicodeDecodeError for bytes that do not fit its type.

    >>> parse_field("N", b"  1250.50", "cp866")
    Decimal('1250.50')
    """
    if kind in ("C", "M"):
        text = data.decode(encoding).rstrip(" \x00")
        return text or None
    stripped = data.strip(b" \x00*")
    if not stripped:
        return None
    if kind in ("N", "F"):
        try:
            return Decimal(stripped.replace(b",", b".").decode("ascii"))
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {data!r}") from exc
    if kind == "D":
        text = stripped.decode("ascii")
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    if kind == "L":
        return {b"T": True, b"Y": True, b"F": False, b"N": False}.get(stripped.upper()[:1])
    return stripped.decode(encoding)


class DbfAdapter(TabularAdapter):
    """A DBF table mapped column by column; see :mod:`adapters.sources.dbf`."""

    name = "dbf"
    summary = "dBase table (DBF), code page from the file or the mapping, mapped by a YAML mapping"

    def _encoding(self, path: Path, ldid: int) -> str:
        declared = self.option("encoding")
        if declared:
            return canonical_name(str(declared))
        if ldid in LANGUAGE_DRIVERS:
            return LANGUAGE_DRIVERS[ldid]
        cpg = path.with_suffix(".cpg")
        if cpg.exists():
            return canonical_name(cpg.read_text(encoding="ascii").strip())
        raise SourceError(f"{path}: no code page in the file (language driver 0x{ldid:02x}); declare encoding")

    def rows(self) -> Iterator[Record]:
        path = Path(self.source)
        try:
            table = DBF(str(path), load=False, ignore_missing_memofile=True, encoding="ascii")
        except (DBFNotFound, OSError) as exc:
            raise SourceError(f"cannot open {path}: {exc}") from exc
        except Exception as exc:  # dbfread raises struct.error, ValueError, ... on a damaged header
            raise SourceError(f"{path}: not a readable DBF header: {exc}") from exc
        header = table.header
        encoding = self._encoding(path, int(header.language_driver))
        fields = [(f.name, f.type, f.length) for f in table.fields]
        self.bind([name for name, _, _ in fields])
        size = path.stat().st_size
        self._total = size
        with path.open("rb") as stream:
            stream.seek(header.headerlen)
            offset = header.headerlen
            for number in range(1, header.numrecords + 1):
                chunk = stream.read(header.recordlen)
                self._done = offset + len(chunk)
                if not chunk or chunk[:1] == b"\x1a":
                    missing = header.numrecords - number + 1
                    yield Record(
                        Position(str(path), record=number, byte_offset=offset),
                        None,
                        [],
                        [
                            Reason(
                                "truncated-file",
                                f"the header declares {header.numrecords} records; the file ends {missing} before that",
                            )
                        ],
                    )
                    return
                position = Position(str(path), record=number, byte_offset=offset)
                offset += len(chunk)
                if chunk[:1] == b"*":
                    continue  # deleted
                yield self._record(position, chunk, fields, encoding, header.recordlen)

    def _record(
        self, position: Position, chunk: bytes, fields: list[tuple[str, str, int]], encoding: str, length: int
    ) -> Record:
        values: list[Any] = []
        raw: dict[str, str] = {}
        problems: list[Reason] = []
        cursor = 1
        for name, kind, width in fields:
            data = chunk[cursor : cursor + width]
            cursor += width
            raw[name] = data.decode(encoding, errors="replace").strip()
            try:
                values.append(parse_field(kind, data, encoding))
            except (ValueError, UnicodeDecodeError) as exc:
                values.append(None)
                problems.append(Reason("unreadable-field", f"{name}: {exc}", name))
        if len(chunk) < length:
            problems.insert(0, Reason("truncated-record", f"{len(chunk)} of {length} bytes: the file is cut short"))
        return Record(position, raw, values, problems)
