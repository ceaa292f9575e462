from __future__ import annotations

import codecs
from pathlib import Path

import pytest

import adapters.sources.csv as csv_source
from adapters.errors import SourceError
from adapters.mapping import Mapping
from adapters.sources.csv import CsvAdapter

SAMPLES = Path(__file__).parents[3] / "examples" / "legacy"
IKOMEK = SAMPLES / "ikomek-109-astana.csv"
IKOMEK_MAPPING = SAMPLES / "ikomek-109-astana.yaml"


def test_ikomek_sample_converts_with_every_record_accounted_for(convert) -> None:
    result = convert("csv", IKOMEK, IKOMEK_MAPPING)
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (48, 45, 3)
    assert s.types == {"ServiceRequest": 45}
    assert {r["reasons"][0]["code"] for r in result.quarantine} == {"invalid-value", "schema-required", "short-row"}


def test_ikomek_offsets_across_the_time_zone_change(convert) -> None:
    result = convert("csv", IKOMEK, IKOMEK_MAPPING)
    last_plus6 = result.by_local_id("IK-2024-0212962")
    first_plus5 = result.by_local_id("IK-2024-0212999")
    assert last_plus6["dateRequested"] == "2024-02-29T23:40:00+06:00"
    assert first_plus5["dateRequested"] == "2024-03-01T00:15:00+05:00"


def test_ikomek_values(convert) -> None:
    case = convert("csv", IKOMEK, IKOMEK_MAPPING).by_local_id("IK-2024-0212333")
    assert case["description"] == "Не горят фонари.\nЖители просят ускорить ремонт"  # a quoted line break
    assert case["status"] == "closed"
    assert case["statusDetail"] == "resolved"  # "Выполнено"
    assert case["channel"] == "telegram"
    assert case["address"]["addressLocality"] == "Астана"
    assert case["contactPhone"].startswith("+77")
    lon, lat = case["location"]["coordinates"]
    assert 71.3 < lon < 71.6
    assert 51.0 < lat < 51.3
    kazakh_status = convert("csv", IKOMEK, IKOMEK_MAPPING).by_local_id("IK-2024-0212111")
    assert kazakh_status["status"] == "closed"  # "Орындалды"


def test_quarantine_positions_point_at_the_raw_bytes(convert) -> None:
    data = IKOMEK.read_bytes()
    for entry in convert("csv", IKOMEK, IKOMEK_MAPPING).quarantine:
        offset = entry["position"]["byte_offset"]
        line = data[offset:].split(b"\r\n", 1)[0].decode("cp1251")
        assert line == entry["raw"]
        assert data[:offset].count(b"\n") + 1 == entry["position"]["line"]


def test_truncated_file_keeps_the_good_rows(convert, tmp_path: Path) -> None:
    data = IKOMEK.read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data[: data.rindex(b"IK-2024-0213628") + 60])  # the last good row cut in the middle
    result = convert("csv", cut, IKOMEK_MAPPING)
    assert (result.summary.read, result.summary.accepted, result.summary.rejected) == (45, 44, 1)
    assert result.quarantine[0]["reasons"][0]["code"] == "short-row"


def test_file_cut_inside_a_quoted_field(convert, tmp_path: Path) -> None:
    data = IKOMEK.read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data[: data.index(b"\xcd\xe5 \xe3\xee\xf0\xff\xf2 \xf4\xee\xed\xe0\xf0\xe8.") + 10])
    result = convert("csv", cut, IKOMEK_MAPPING)
    assert result.summary.read == result.summary.accepted + 1 == 10
    assert result.quarantine[-1]["reasons"][0]["code"] == "malformed-csv"


@pytest.mark.parametrize(
    ("text_encoding", "declared", "message"),
    [
        ("cp1251", "utf-8", "the header is not valid utf-8.*look like cp1251"),
        ("utf-8", "cp1251", "declared cp1251, but its bytes are UTF-8"),
        ("kz1048", "cp1251", "declare encoding kz1048"),
    ],
)
def test_wrong_declared_encoding_is_one_clear_error(
    convert, tmp_path: Path, text_encoding: str, declared: str, message: str
) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(
        "№ обращения;Статус\r\nIK-1;Орындалды\r\nIK-2;Қабылданды\r\n".encode(text_encoding)
        if text_encoding != "cp1251"
        else "№ обращения;Статус\r\nIK-1;Выполнено\r\n".encode(text_encoding)
    )
    with pytest.raises(SourceError, match=message):
        convert("csv", source, IKOMEK_MAPPING, encoding=declared)


def test_an_undecodable_line_is_quarantined_and_its_neighbours_kept(convert, tmp_path: Path) -> None:
    lines = IKOMEK.read_bytes().decode("cp1251").encode("utf-8").split(b"\r\n")
    lines[3] = lines[3].replace(b";", b";\xff\xfe", 1)
    source = tmp_path / "utf8.csv"
    source.write_bytes(b"\r\n".join(lines))
    result = convert("csv", source, IKOMEK_MAPPING, encoding="utf-8")
    assert result.summary.read == 48
    undecodable = [q for q in result.quarantine if q["reasons"][0]["code"] == "undecodable"]
    assert [q["position"]["line"] for q in undecodable] == [4]
    assert result.summary.accepted == 44


def test_missing_file_is_a_source_error(convert, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        convert("csv", tmp_path / "absent.csv", IKOMEK_MAPPING)


@pytest.mark.parametrize("encoding", ["cp1251", "utf-8"])
def test_records_do_not_depend_on_how_the_body_is_cut_into_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """The body is decoded a piece at a time and one csv.reader runs across the pieces: pieces of one byte,
    a few bytes or a few lines must give the records, positions, raw text and problems of one piece. The file
    has CRLF line ends, quoted line breaks, blank lines, an undecodable line, no line feed at its end and an
    unclosed quote."""
    text = IKOMEK.read_bytes().decode("cp1251")
    body = text.encode(encoding).split(b"\r\n")
    body[5] = body[5].replace(b";", b";\x98\xff;", 1)  # undecodable in both encodings
    body.insert(9, b"")
    source = tmp_path / "pieces.csv"
    source.write_bytes(b"\r\n".join(body) + b'\r\nIK-T;"left open\r\nstill open')
    mapping = Mapping.load(IKOMEK_MAPPING)
    mapping.source["encoding"] = encoding

    def read(piece_bytes: int) -> list[tuple[object, ...]]:
        monkeypatch.setattr(csv_source, "PIECE_BYTES", piece_bytes)
        adapter = CsvAdapter(str(source), mapping)
        return [(r.position, r.raw, r.values, r.problems) for r in adapter.records()]

    whole = read(1 << 30)
    assert len(whole) == 49
    assert whole[-1][3] == [csv_source.RAN_OUT]
    assert [r[0].line for r in whole if any(p.code == "undecodable" for p in r[3])] == [6]
    assert whole[-1][1] == 'IK-T;"left open\r\nstill open'
    for piece_bytes in (1, 2, 3, 7, 64, 1000):
        assert read(piece_bytes) == whole, piece_bytes


@pytest.mark.parametrize("encoding", ["cp1251", "utf-8"])
def test_block_rows_give_the_records_that_rows_gives(tmp_path: Path, encoding: str) -> None:
    """Workers read their blocks through BlockRows, which gives a row without problems as its cells and lines
    and makes its record (position, raw text) only when asked: for blocks of any size, the records are those
    of rows(). The file has the awkward parts of the test above, rows with extra cells, empty or not, and a
    carriage return alone inside a field."""
    text = IKOMEK.read_bytes().decode("cp1251")
    body = text.encode(encoding).split(b"\r\n")
    body[5] = body[5].replace(b";", b";\x98\xff;", 1)  # undecodable: that block is read as rows() reads it
    body[7] += b";;"  # extra empty cells: no problem, but not the header's width
    body[8] += b";extra"
    for n, field in ((10, b'"a lone\rCR, quoted"'), (11, b"a lone\rCR, not quoted")):  # no line end, but...
        cells = body[n].split(b";")
        cells[4] = field
        body[n] = b";".join(cells)
    body.insert(9, b"")
    source = tmp_path / "blocks.csv"
    source.write_bytes(b"\r\n".join(body) + b'\r\nIK-T;"left open\r\nstill open')
    mapping = Mapping.load(IKOMEK_MAPPING)
    mapping.source["encoding"] = encoding
    whole = [(r.position, r.raw, r.values, r.problems) for r in CsvAdapter(str(source), mapping).records()]
    assert "long-row" in {p.code for r in whole for p in r[3]}
    for size in (1, 150, 1000, 1 << 20):
        adapter = CsvAdapter(str(source), mapping)
        records, cells_only = [], 0
        for block, line, offset, _ in adapter.blocks(size, guess=False):
            rows = adapter.block_rows(block, line, offset)
            for row in rows:
                cells_only += isinstance(row, tuple)
                record = rows.record(*row) if isinstance(row, tuple) else row
                records.append((record.position, record.raw, record.values, record.problems))
        assert records == whole, size
        if size in (150, 1000):
            assert cells_only > len(whole) / 2
        else:  # every record but the unclosed last in one block, bad byte and all, read the way rows() reads
            assert cells_only == 0  # (with blocks of 1 byte, a record longer than 8 blocks takes the rest)


def test_a_file_with_cr_line_ends_is_one_clear_error(convert, tmp_path: Path) -> None:
    source = tmp_path / "mac.csv"
    source.write_bytes(IKOMEK.read_bytes().replace(b"\r\n", b"\r"))
    with pytest.raises(SourceError, match="lines end in CR alone: save it with CRLF or LF line ends"):
        convert("csv", source, IKOMEK_MAPPING)


def _ikomek_text() -> str:
    return IKOMEK.read_bytes().decode("cp1251")


def _utf8_mapping(tmp_path: Path, extra: str = "") -> Path:
    mapping = tmp_path / "utf8.yaml"
    text = IKOMEK_MAPPING.read_text(encoding="utf-8").replace("encoding: cp1251", "encoding: utf-8" + extra)
    mapping.write_text(text, encoding="utf-8")
    return mapping


def test_a_byte_order_mark_with_utf8_declared_is_no_part_of_the_first_header(convert, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8 (Comma delimited)" starts the file with EF BB BF; the mapping says utf-8."""
    source = tmp_path / "excel-utf8.csv"
    source.write_bytes(_ikomek_text().encode("utf-8-sig"))
    result = convert("csv", source, _utf8_mapping(tmp_path))
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (48, 45, 3)  # serviceRequestId's column "Номер обращения" is found
    assert result.entities[0]["serviceRequestId"].startswith("IK-2024-")


def test_excel_unicode_text_is_named_for_what_it_is(convert, tmp_path: Path) -> None:
    """Excel's "Unicode Text (*.txt)": UTF-16-LE with a byte-order mark, tab-separated, CRLF."""
    source = tmp_path / "unicode-text.csv"
    source.write_bytes(codecs.BOM_UTF16_LE + _ikomek_text().replace(";", "\t").encode("utf-16-le"))
    with pytest.raises(SourceError, match=r'not a CSV text file but UTF-16 text \(what Excel saves as "Unicode Text"'):
        convert("csv", source, IKOMEK_MAPPING)


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("almaty-109.xlsx", "an Excel workbook \\(XLSX\\) under another name; read it with the xlsx adapter"),
        ("almaty-109.xls", "an Excel 97-2003 workbook \\(XLS\\); read it with the xls adapter"),
        ("almaty-109.ods", "an OpenDocument spreadsheet \\(ODS\\) under another name; read it with the ods adapter"),
    ],
)
def test_a_workbook_renamed_csv_is_named_for_what_it_is(convert, tmp_path: Path, sample: str, kind: str) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes((SAMPLES / sample).read_bytes())
    with pytest.raises(SourceError, match=f"not a CSV text file but {kind}"):
        convert("csv", source, IKOMEK_MAPPING)
