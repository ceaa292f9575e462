from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters.errors import SourceError
from adapters.sources.xlsx import combine_header

SAMPLES = Path(__file__).parents[3] / "examples" / "legacy"


def test_almaty_sample_with_merged_two_row_header(convert) -> None:
    result = convert("xlsx", SAMPLES / "almaty-109.xlsx", SAMPLES / "almaty-109.yaml")
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (31, 30, 1)
    entry = result.quarantine[0]
    assert entry["position"]["row"] == 34
    assert entry["reasons"][0]["field"] == "dateRequested"
    first = result.by_local_id("ALM-240000")
    assert first["address"]["streetAddress"].startswith("проспект Абая")  # "Адрес / Улица, дом"
    assert first["contactPhone"].startswith("+77")  # "Заявитель / Телефон"
    assert first["status"] == "closed"  # "Орындалды"


def test_excel_dates_and_typed_text_dates_get_their_offsets(convert) -> None:
    entities = convert("xlsx", SAMPLES / "almaty-109.xlsx", SAMPLES / "almaty-109.yaml").entities
    offsets = {e["dateRequested"][:10]: e["dateRequested"][-6:] for e in entities}
    assert offsets["2024-02-28"] == "+06:00"
    assert offsets["2024-03-02"] == "+05:00"
    text_typed = next(e for e in entities if e["serviceRequestId"] == "ALM-240000")  # typed as text in the sheet
    assert text_typed["dateRequested"] == "2024-02-27T09:33:00+06:00"


def test_combine_header_keeps_vertical_merges_whole() -> None:
    assert combine_header([["A", None, "B"], [None, None, None]]) == ["A", "", "B"]


def test_not_a_workbook_is_one_error(convert, tmp_path: Path) -> None:
    bogus = tmp_path / "x.xlsx"
    bogus.write_bytes(b"PK\x03\x04 this is no workbook")
    with pytest.raises(SourceError, match=r"cannot read .* as a spreadsheet \(XLSX, XLS or ODS\)"):
        convert("xlsx", bogus, SAMPLES / "almaty-109.yaml")


def test_missing_sheet_is_named(convert, tmp_path: Path) -> None:
    book = Workbook()
    book.active.title = "Лист1"
    path = tmp_path / "other.xlsx"
    book.save(path)
    with pytest.raises(SourceError, match="no sheet 'Обращения'"):
        convert("xlsx", path, SAMPLES / "almaty-109.yaml")


def test_default_sheet_is_the_first_visible_one_and_the_choice_is_reported(convert, tmp_path: Path) -> None:
    """Excel workbooks often keep a hidden lookup sheet first; the register is the first sheet a user sees."""
    book = Workbook()
    lookups = book.active
    lookups.title = "Справочник"
    lookups.append(["Номер заявки", "Дата поступления"])
    lookups.append(["код", "значение"])
    lookups.sheet_state = "hidden"
    register = book.create_sheet("Обращения")
    register.append(["Номер заявки", "Дата поступления", "Категория", "Статус"])
    register.append(["ALM-1", "27.02.2024 09:33", "Ямы на дороге", "Принято"])
    path = tmp_path / "hidden-first.xlsx"
    book.save(path)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        (SAMPLES / "almaty-109.yaml").read_text(encoding="utf-8").replace("  sheet: Обращения\n", "")
        .replace("header_row: 2", "header_row: 1").replace("header_rows: 2", "header_rows: 1"),
        encoding="utf-8",
    )  # fmt: skip
    result = convert("xlsx", path, mapping)
    assert (result.summary.read, result.summary.accepted) == (1, 1)
    assert result.entities[0]["serviceRequestId"] == "ALM-1"
    assert result.summary.notes == ["sheet 'Обращения': the first visible one; passed over hidden ['Справочник']"]


@pytest.mark.parametrize("kind", ["xls", "ods"])
def test_xls_and_ods_exports_give_the_same_entities_as_the_xlsx_one(convert, kind: str) -> None:
    """The register saved as Excel 97-2003 (xlwt) and OpenDocument (odfpy) by make_samples.py, from the same data."""
    xlsx = convert("xlsx", SAMPLES / "almaty-109.xlsx", SAMPLES / "almaty-109.yaml")
    other = convert(kind, SAMPLES / f"almaty-109.{kind}", SAMPLES / "almaty-109.yaml")
    assert other.entities == xlsx.entities
    assert len(other.entities) == 30
    assert other.summary.as_dict() | {"adapter": "xlsx"} == xlsx.summary.as_dict()
    assert [q["reasons"] for q in other.quarantine] == [q["reasons"] for q in xlsx.quarantine]
    assert [q["position"]["row"] for q in other.quarantine] == [34]
