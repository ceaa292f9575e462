"""Dates as exports really write them: declared forms, offsets kept, ambiguity refused, implausible ones bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import MappingError

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
MAPPING = SAMPLES / "ikomek-109-astana.yaml"
HEADER = "№ обращения;Дата регистрации;Канал;Категория;Статус;Дата закрытия"


def _export(tmp_path: Path, rows: list[tuple[str, str, str]], rule: str) -> tuple[Path, Path]:
    """An iKOMEK-style cp1251 ';' export whose date columns hold ``rows``' forms, and the sample mapping with
    ``dateRequested`` and ``dateClosed`` given ``rule`` (extra keys of the rule, YAML flow style)."""
    lines = [HEADER] + [
        f"{n};{opened};Звонок 109;Ямы на дороге;{'Выполнено' if closed else 'Принято'};{closed}"
        for n, opened, closed in rows
    ]
    source = tmp_path / "export.csv"
    source.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
    text = MAPPING.read_text(encoding="utf-8")
    for field in ("Дата регистрации, Дата обращения]", "Дата закрытия, Дата исполнения]"):
        text = text.replace(f"{field}, convert: local_datetime", f"{field}, convert: local_datetime, {rule}")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(text, encoding="utf-8")
    return source, mapping


def test_declared_forms_are_read_in_order_and_given_offsets_kept(convert, tmp_path: Path) -> None:
    """One register merged from 1C (DD.MM.YY), a web form (ISO 8601 with Z or an offset) and a typed sheet."""
    rows = [
        ("A-1", "29.02.24 23:40", "01.03.24 09:00"),
        ("A-2", "2024-03-01T04:30:00Z", "2024-03-01T12:00:00+05:00"),
        ("A-3", "2024-03-02 08:15", "2024-03-02T08:45:00"),
    ]
    forms = "args: {formats: [DD.MM.YY HH:MM, YYYY-MM-DD HH:MM, ISO 8601]}"
    result = convert("csv", *_export(tmp_path, rows, forms))
    assert result.summary.rejected == 0, result.quarantine
    got = {e["serviceRequestId"]: (e["dateRequested"], e["dateClosed"]) for e in result.entities}
    assert got == {
        "A-1": ("2024-02-29T23:40:00+06:00", "2024-03-01T09:00:00+05:00"),
        "A-2": ("2024-03-01T04:30:00Z", "2024-03-01T12:00:00+05:00"),  # as given, not moved to local time
        "A-3": ("2024-03-02T08:15:00+05:00", "2024-03-02T08:45:00+05:00"),
    }


def test_an_iso_value_with_its_offset_is_read_without_declaring_anything(convert, tmp_path: Path) -> None:
    result = convert("csv", *_export(tmp_path, [("B-1", "2024-03-01T10:00:00+05:00", "")], "min: 2000-01-01"))
    assert result.entities[0]["dateRequested"] == "2024-03-01T10:00:00+05:00"


def test_a_value_two_declared_forms_read_differently_is_refused(convert, tmp_path: Path) -> None:
    """Day-first and month-first both declared: 03/04/2024 is 3 April or 4 March, and neither is guessed."""
    rows = [("C-1", "03/04/2024 10:00", ""), ("C-2", "25/03/2024 10:00", "")]
    forms = "args: {formats: [DD/MM/YYYY HH:MM, MM/DD/YYYY HH:MM]}"
    result = convert("csv", *_export(tmp_path, rows, forms))
    assert [e["serviceRequestId"] for e in result.entities] == ["C-2"]
    reason = result.quarantine[0]["reasons"][0]
    assert (reason["code"], reason["field"]) == ("invalid-value", "dateRequested")
    assert "ambiguous date/time '03/04/2024 10:00'" in reason["message"]


def test_dates_outside_the_declared_bounds_are_quarantined(convert, tmp_path: Path) -> None:
    """A registration date typed with the wrong year (2034) converts cleanly and is still impossible."""
    rows = [("D-1", "01.03.2024 10:00", ""), ("D-2", "01.03.2034 10:00", ""), ("D-3", "01.03.1924 10:00", "")]
    result = convert("csv", *_export(tmp_path, rows, "min: 2000-01-01, max: now+1d"))
    assert [e["serviceRequestId"] for e in result.entities] == ["D-1"]
    reasons = [q["reasons"][0] for q in result.quarantine]
    assert [(r["code"], r["field"]) for r in reasons] == [("implausible-value", "dateRequested")] * 2
    assert "above the maximum now+1d" in reasons[0]["message"]
    assert "below the minimum 2000-01-01" in reasons[1]["message"]


def test_numbers_outside_bounds_are_quarantined(convert, samples: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "meters.yaml"
    text = (samples / "meters-astana.yaml").read_text(encoding="utf-8")
    assert "convert: number" in text
    mapping.write_text(text.replace("convert: number", "convert: number, min: 0, max: 50000", 1), encoding="utf-8")
    result = convert("fixed-width", samples / "meters-astana.txt", mapping)
    too_big = [q for q in result.quarantine if q["reasons"][0]["code"] == "implausible-value"]
    assert too_big
    assert all(e["value"] <= 50000 for e in result.entities)


@pytest.mark.parametrize(("bound", "message"), [("max: soon", "max must be a number, a date"), ("min: true", "min")])
def test_bad_bounds_are_mapping_errors(convert, tmp_path: Path, bound: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        convert("csv", *_export(tmp_path, [("E-1", "01.03.2024 10:00", "")], bound))
