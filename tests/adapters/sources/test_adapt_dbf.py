from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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


ONAY_FIELDS = (
    "TRANS_ID C(14); DT_OPER {dt}; AMOUNT {amount}; CARD C(16); OPER C(12); STATUS C(12); REASON M; DISTRICT C(20)"
)


def _onay_table(path: Path, dbf_type: str, codepage: str, dt: str, amount: str) -> Path:
    """Two ONAY operations saved by the ``dbf`` package as FoxPro/dBase would: REASON is a memo field."""
    import dbf  # noqa: PLC0415 - the writer, a test dependency only

    table = dbf.Table(str(path), ONAY_FIELDS.format(dt=dt, amount=amount), dbf_type=dbf_type, codepage=codepage)
    table.open(dbf.READ_WRITE)
    moment = datetime(2024, 2, 29, 23, 40) if dt == "T" else "29.02.2024 23:40"
    for n, (money, status, reason) in enumerate(
        [("1250.50", "Отклонен", "Недостаточно средств на карте"), ("200.00", "Проведен", "")]
    ):
        amount_value = Decimal(money) if amount == "Y" else float(money)
        table.append((f"ON2403900{n}", moment, amount_value, "9398123456789012", "Пополнение", status, reason,
                      "Бостандыкский"))  # fmt: skip
    table.close()
    return path


def test_visual_foxpro_integer_currency_datetime_and_memo_fields(convert, tmp_path: Path) -> None:
    """A Visual FoxPro table (version 0x30, code-page mark 0xC9 = cp1251) with Y, T and M fields and its .fpt."""
    path = _onay_table(tmp_path / "onay-vfp.dbf", "vfp", "cp1251", "T", "Y")
    assert (tmp_path / "onay-vfp.fpt").exists()
    result = convert("dbf", path, MAPPING)
    assert (result.summary.read, result.summary.accepted) == (2, 2), result.quarantine
    first = result.by_local_id("ON24039000")
    assert first["amount"] == "1250.50"  # currency, exact
    assert first["dateBooked"] == "2024-02-29T23:40:00+06:00"  # a binary date-time field
    assert first["statusReason"] == "AM04"  # the memo's text, looked up
    assert first["district"] == "Бостандыкский"  # cp1251 from the code-page mark


@pytest.mark.parametrize(("dbf_type", "memo_suffix"), [("db3", ".dbt"), ("fp", ".fpt")])
def test_memo_fields_come_out_as_their_text(convert, tmp_path: Path, dbf_type: str, memo_suffix: str) -> None:
    path = _onay_table(tmp_path / "onay.dbf", dbf_type, "cp866", "C(16)", "N(12,2)")
    assert path.with_suffix(memo_suffix).exists()
    result = convert("dbf", path, MAPPING)
    assert (result.summary.read, result.summary.accepted) == (2, 2), result.quarantine
    assert result.by_local_id("ON24039000")["statusReason"] == "AM04"
    assert "statusReason" not in result.by_local_id("ON24039001")  # an empty memo is no value
    path.with_suffix(memo_suffix).unlink()
    with pytest.raises(SourceError, match=r"memo fields \['REASON \(M\)'\] are kept in a memo file"):
        convert("dbf", path, MAPPING)
