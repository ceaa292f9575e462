from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import SourceError

SAMPLES = Path(__file__).parents[3] / "examples" / "legacy"
ONAY = SAMPLES / "onay-payments.dbf"
MAPPING = SAMPLES / "onay-payments.yaml"


def test_onay_sample_amounts_are_exact_and_deleted_records_skipped(convert) -> None:
    result = convert("dbf", ONAY, MAPPING)
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (39, 38, 1)  # 40 records, one deleted
    assert "ON24030017" not in {e["transactionId"] for e in result.entities}
    top_up = result.by_local_id("ON24030000")
    assert top_up["amount"] in {"1000.00", "2000.00", "5000.00"}
    assert isinstance(top_up["amount"], str)
    assert top_up["statusReason"] == "AM04"
    assert top_up["status"] == "RJCT"
    fare = result.by_local_id("ON24030001")
    assert fare["amount"] == "200.00"
    assert fare["district"] == "Бостандыкский"  # cp866 from the language-driver byte
    assert len(fare["payerRef"]) == 43
    assert "9398" not in fare["payerRef"]


def test_offsets_either_side_of_the_change(convert) -> None:
    entities = convert("dbf", ONAY, MAPPING).entities
    before = [e for e in entities if e["dateBooked"].startswith("2024-02-29")]
    after = [e for e in entities if e["dateBooked"].startswith("2024-03-01")]
    assert before
    assert after
    assert {e["dateBooked"][-6:] for e in before} == {"+06:00"}
    assert {e["dateBooked"][-6:] for e in after} == {"+05:00"}


def test_damaged_numeric_field_rejects_only_its_record(convert) -> None:
    entry = convert("dbf", ONAY, MAPPING).quarantine[0]
    assert entry["position"]["record"] == 24
    assert entry["raw"]["AMOUNT"] == "12,5.0"
    assert entry["reasons"][0]["code"] == "unreadable-field"


def test_truncated_dbf_keeps_what_is_there(convert, tmp_path: Path) -> None:
    data = ONAY.read_bytes()
    cut = tmp_path / "cut.dbf"
    cut.write_bytes(data[: len(data) - 700])  # the last 4.8 records are gone
    result = convert("dbf", cut, MAPPING)
    codes = [q["reasons"][0]["code"] for q in result.quarantine]
    assert codes[-2:] == ["truncated-record", "truncated-file"]
    assert result.summary.accepted == 33  # records 1..35 whole, less the deleted one and record 24
    assert result.summary.read == result.summary.accepted + result.summary.rejected


def test_no_code_page_anywhere_is_one_error(convert, tmp_path: Path) -> None:
    data = bytearray(ONAY.read_bytes())
    data[29] = 0
    path = tmp_path / "noldid.dbf"
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="no code page"):
        convert("dbf", path, MAPPING)
    (tmp_path / "noldid.cpg").write_text("866", encoding="ascii")
    assert convert("dbf", path, MAPPING).summary.accepted == 38


def test_not_a_dbf(convert, tmp_path: Path) -> None:
    path = tmp_path / "x.dbf"
    path.write_bytes(b"\x03")
    with pytest.raises(SourceError):
        convert("dbf", path, MAPPING)
