"""``qala adapt inspect``: on every bundled tabular sample, the mapping it writes loads the sample as the hand-written
mapping does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qala.cli import build_app

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
runner = CliRunner()

CASES = [
    ("ikomek-109-astana.csv", "csv", "ikomek-109-astana.yaml", "encoding cp1251"),
    ("facilities-astana.csv", "csv", "facilities-astana.yaml", "encoding kz1048: byte 0x9d"),
    ("almaty-109.xlsx", "xlsx", "almaty-109.yaml", "spanning 2 rows"),
    ("almaty-109.xls", "xls", "almaty-109.yaml", "spanning 2 rows"),
    ("almaty-109.ods", "ods", "almaty-109.yaml", "spanning 2 rows"),
    ("onay-payments.dbf", "dbf", "onay-payments.yaml", "language-driver byte 0x65"),
]


def _inspect(tmp_path: Path, sample: str, *extra: str) -> tuple[str, Path]:
    written = tmp_path / "started.yaml"
    result = runner.invoke(
        build_app(), ["adapt", "inspect", str(SAMPLES / sample), "--mapping-out", str(written), *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output, written


@pytest.mark.parametrize(("sample", "adapter", "hand_written", "evidence"), CASES)
def test_the_written_mapping_loads_the_sample_as_the_hand_written_one(
    convert, tmp_path: Path, sample: str, adapter: str, hand_written: str, evidence: str
) -> None:
    output, written = _inspect(tmp_path, sample)
    assert evidence in output
    started = convert(adapter, SAMPLES / sample, written)
    by_hand = convert(adapter, SAMPLES / sample, SAMPLES / hand_written)
    assert started.entities == by_hand.entities
    assert started.entities
    assert started.summary.as_dict() == by_hand.summary.as_dict()
    assert [(q["position"], q["reasons"]) for q in started.quarantine] == [
        (q["position"], q["reasons"]) for q in by_hand.quarantine
    ]


def test_the_report_shows_date_forms_sheets_and_rows(tmp_path: Path) -> None:
    output, written = _inspect(tmp_path, "almaty-109.xlsx")
    assert "sheets: Обращения" in output
    assert "dates in 'Дата поступления': date-time cells (22), DD.MM.YYYY HH:MM (8)" in output
    assert "ALM-" in output  # the first rows
    assert written.read_text(encoding="utf-8").startswith("# Made by `qala adapt inspect almaty-109.xlsx`")


def test_the_type_can_be_named_and_an_unknown_one_is_one_line(tmp_path: Path) -> None:
    output, _ = _inspect(tmp_path, "facilities-astana.csv", "--type", "Facility")
    assert "started from facilities-astana.yaml (type Facility)" in output
    result = runner.invoke(
        build_app(),
        ["adapt", "inspect", str(SAMPLES / "facilities-astana.csv"), "--mapping-out", str(tmp_path / "x.yaml"),
         "--type", "Nope"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no bundled mapping of type 'Nope'" in result.output


def test_an_existing_mapping_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("type: Mine\n", encoding="utf-8")
    result = runner.invoke(
        build_app(), ["adapt", "inspect", str(SAMPLES / "ikomek-109-astana.csv"), "--mapping-out", str(target)]
    )
    assert result.exit_code != 0
    assert target.read_text(encoding="utf-8") == "type: Mine\n"


def test_headers_another_system_uses_are_matched_by_the_synonyms_of_every_bundled_mapping(
    convert, tmp_path: Path
) -> None:
    """An iKOMEK export whose number and date columns carry the names Almaty-109 uses: the iKOMEK mapping does
    not know them, the Almaty one does, and the written mapping reads them."""
    data = (SAMPLES / "ikomek-109-astana.csv").read_bytes()
    header, body = data.split(b"\r\n", 1)
    renamed = (
        header.decode("cp1251").replace("№ обращения", "Номер заявки").replace("Дата регистрации", "Дата поступления")
    )
    source = tmp_path / "renamed.csv"
    source.write_bytes(renamed.encode("cp1251") + b"\r\n" + body)
    written = tmp_path / "started.yaml"
    result = runner.invoke(build_app(), ["adapt", "inspect", str(source), "--mapping-out", str(written)])
    assert result.exit_code == 0, result.output
    started = convert("csv", source, written)
    by_hand = convert("csv", SAMPLES / "ikomek-109-astana.csv", SAMPLES / "ikomek-109-astana.yaml")
    assert started.entities == by_hand.entities
