"""dBase (DBF) tables from old registries and payment systems: dBase III/IV, FoxPro and Visual FoxPro, with
their memo files (``.dbt``, ``.fpt``) and the code page from the file or the mapping.

dbfread reads the header, the memo file and every field type (Visual FoxPro's integer ``I``, currency ``Y``,
date-time ``T``, double ``B``/``O`` and ``V`` text among them); records are read here one by one so that each
keeps its record number and byte offset, a field that does not parse rejects only its record, and a file cut
short is noticed. Numeric fields become ``Decimal`` (never float), so money stays exact. Deleted records are
skipped. A table with memo fields whose memo file is missing is refused: its memos would all come out empty.

Options: ``encoding`` (wins over the language-driver byte and a ``.cpg`` file; one of them is needed).

    $ qala adapt run dbf examples/legacy/onay-payments.dbf --mapping examples/legacy/onay-payments.yaml
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dbfread import DBF
from dbfread.codepages import codepages
from dbfread.exceptions import DBFNotFound, MissingMemoFile
from dbfread.field_parser import FieldParser
from dbfread.memo import BinaryMemo, open_memofile

from adapters.encoding import canonical_name
from adapters.errors import SourceError
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter

LANGUAGE_DRIVERS: dict[int, str] = {int(ldid): str(name) for ldid, (name, _) in codepages.items() if ldid}
"""Code pages by language-driver byte, as dbfread knows them (0x65 and 0x26 cp866, 0xC9 cp1251, ...)."""


class ExactFieldParser(FieldParser):  # type: ignore[misc]  # dbfread is untyped
    """dbfread's parser, with numbers as ``Decimal`` (dbfread makes ``N`` and ``F`` floats) and text decoded
    strictly, so that a byte the code page lacks rejects its record instead of becoming U+FFFD.

    >>> class Table: encoding, char_decode_errors = "cp866", "strict"; header = type("H", (), {"dbversion": 3})
    >>> ExactFieldParser(Table()).parseN(None, b"  1250.50")
    Decimal('1250.50')
    """

    def parseN(self, field: Any, data: bytes) -> Decimal | None:  # noqa: N802 - dbfread's naming
        stripped = data.strip(b" \x00*")
        if not stripped:
            return None
        try:
            return Decimal(stripped.replace(b",", b".").decode("ascii"))
        except (InvalidOperation, UnicodeDecodeError) as exc:
            raise ValueError(f"not a number: {data!r}") from exc

    parseF = parseN  # noqa: N815 - dbfread's naming

    def parseM(self, field: Any, data: bytes) -> Any:  # noqa: N802 - dbfread's naming
        memo = super().parseM(field, data)
        if isinstance(memo, BinaryMemo):
            return None  # a picture or OLE object: nothing a mapping can use
        return memo or None


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
            table = DBF(str(path), load=False, encoding="ascii", char_decode_errors="strict")
        except MissingMemoFile as exc:
            memo_fields = [f"{f.name} ({f.type})" for f in _header_fields(path) if f.type in "MGPB"]
            raise SourceError(
                f"{path}: its memo fields {memo_fields} are kept in a memo file (.dbt or .fpt) next to it, "
                "which is missing; copy it along with the table"
            ) from exc
        except (DBFNotFound, OSError) as exc:
            raise SourceError(f"cannot open {path}: {exc}") from exc
        except Exception as exc:  # dbfread raises struct.error, ValueError, ... on a damaged header
            raise SourceError(f"{path}: not a readable DBF header: {exc}") from exc
        header = table.header
        table.encoding = self._encoding(path, int(header.language_driver))
        fields = list(table.fields)
        self.bind([f.name for f in fields])
        self._total = path.stat().st_size
        with contextlib.ExitStack() as stack:
            memo = (
                stack.enter_context(open_memofile(table.memofilename, header.dbversion)) if table.memofilename else None
            )
            yield from self._records(path, header, fields, ExactFieldParser(table, memo))

    def _records(self, path: Path, header: Any, fields: list[Any], parser: ExactFieldParser) -> Iterator[Record]:
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
                yield self._record(position, chunk, fields, parser, header.recordlen)

    def _record(self, position: Position, chunk: bytes, fields: list[Any], parser: Any, length: int) -> Record:
        values: list[Any] = []
        raw: dict[str, Any] = {}
        problems: list[Reason] = []
        cursor = 1
        for field in fields:
            data = chunk[cursor : cursor + field.length]
            cursor += field.length
            try:
                value = parser.parse(field, data)
            except (ValueError, UnicodeDecodeError, LookupError, struct.error) as exc:  # struct: a cut binary field
                value = None
                problems.append(Reason("unreadable-field", f"{field.name}: {exc}", field.name))
            values.append(value)
            raw[field.name] = _raw(field.type, data, value, parser.encoding)
        if len(chunk) < length:
            problems.insert(0, Reason("truncated-record", f"{len(chunk)} of {length} bytes: the file is cut short"))
        return Record(position, raw, values, problems)


def _raw(kind: str, data: bytes, value: Any, encoding: str) -> Any:
    """A field as the quarantine shows it: text fields as text, binary ones (``I``, ``Y``, ``T``, ``B``) by
    their value, memos by their text."""
    if kind in "CNFDLV":
        return data.decode(encoding, errors="replace").strip()
    if value is None:
        return data.hex() if data.strip(b" \x00") else None
    return str(value)


def _header_fields(path: Path) -> list[Any]:
    """The field descriptors alone, for naming the memo fields of a table whose memo file is missing."""
    try:
        return list(DBF(str(path), load=False, encoding="ascii", ignore_missing_memofile=True).fields)
    except Exception:  # the table is already being refused; naming its fields is a courtesy
        return []
