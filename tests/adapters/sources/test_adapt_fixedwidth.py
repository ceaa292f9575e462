from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import MappingError

SAMPLES = Path(__file__).parents[3] / "examples" / "legacy"
DUMP = SAMPLES / "meters-astana.txt"
MAPPING = SAMPLES / "meters-astana.yaml"


def test_meter_dump(convert) -> None:
    result = convert("fixed-width", DUMP, MAPPING)
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (31, 29, 2)
    first = result.entities[0]
    assert first["obisCode"] == "1-0:1.8.0"
    assert first["meterType"] == "electricity"
    assert first["value"] == 83111.088
    assert first["dateObserved"] == "2024-02-28T23:00:00+06:00"
    assert first["refDevice"] == "urn:ngsi-ld:Device:astana:SN7700000"
    assert first["district"] == "Есиль"
    after = [e for e in result.entities if e["dateObserved"] >= "2024-03-01"]
    assert after
    assert {e["dateObserved"][-6:] for e in after} == {"+05:00"}
    assert {q["reasons"][0]["code"] for q in result.quarantine} == {"invalid-value", "short-row"}
    assert result.quarantine[-1]["position"]["line"] == 33


def test_offsets_are_bytes_not_characters(convert, tmp_path: Path) -> None:
    """In UTF-8 "ХВС" takes six bytes; slicing the bytes first keeps the next field where the layout says."""
    source = tmp_path / "utf8.txt"
    source.write_bytes("ХВС    412,734 01.03.2024 08:00\r\nХВ  15,5        29.02.2024 09:00\r\n".encode())
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        """
type: MeterReading
source: {encoding: utf-8, layout: {kind: [0, 6], value: [6, 11], taken: [18, 16]}}
constants: {city: astana, readingType: cumulative, unit: m3, obisCode: "8-0:1.0.0",
            refDevice: "urn:ngsi-ld:Device:astana:W1"}
lookups: {meterType: {water: [ХВС, ХВ]}}
fields:
  meterType: {column: [kind], lookup: meterType}
  value: {column: [value], convert: number}
  dateObserved: {column: [taken], convert: local_datetime}
  dateModified: {first_of: [dateObserved]}
  id: {const: "urn:ngsi-ld:MeterReading:astana:W1"}
""",
        encoding="utf-8",
    )
    result = convert("fixed-width", source, mapping)
    assert result.entities[0]["value"] == 412.734
    assert result.entities[0]["dateObserved"] == "2024-03-01T08:00:00+05:00"
    assert result.entities[1]["value"] == 15.5  # "ХВ  " is 6 bytes too, though only 4 characters
    assert result.entities[1]["dateObserved"] == "2024-02-29T09:00:00+06:00"


def test_layout_is_required(convert, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("type: MeterReading\nfields: {value: {column: [value]}}\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"source\.layout"):
        convert("fixed-width", DUMP, mapping)


def test_page_banners_and_total_lines_are_skipped_as_the_mapping_declares(convert, tmp_path: Path) -> None:
    """A nightly dump as a mainframe report writer prints it: a banner on every page (after a form feed), an
    "ИТОГО" total line, and a closing line; the mapping names them, and no record is lost or quarantined."""
    lines = DUMP.read_bytes().decode("cp866").split("\r\n")
    banner, rule, body = lines[0], lines[1], [line for line in lines[2:-1] if "ошибка" not in line]
    printed = [banner, rule]
    for n, line in enumerate(body):
        if n and n % 12 == 0:
            printed += ["\f" + banner, rule]
        printed.append(line)
    printed += [rule, f"ИТОГО ПОКАЗАНИЙ: {len(body):>6}", "КОНЕЦ ВЫГРУЗКИ 05.03.2024 02:14"]
    dump = tmp_path / "nightly.txt"
    dump.write_bytes("\r\n".join(printed).encode("cp866") + b"\r\n")
    mapping = tmp_path / "nightly.yaml"
    declared = "  skip_lines: 2\n  skip_matching: ['^\\f?АО АСТАНА', '^-+$', '^ИТОГО']\n  skip_footer: 1\n"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace("  skip_lines: 2\n", declared), encoding="utf-8")
    result = convert("fixed-width", dump, mapping)
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (len(body), len(body), 0), result.quarantine
    assert s.notes == [
        f"skipped the last 1 line(s) (source.skip_footer), from line {len(printed)}",
        "skipped 6 line(s) matching source.skip_matching",
    ]


def test_a_bad_skip_pattern_is_a_mapping_error(convert, tmp_path: Path) -> None:
    mapping = tmp_path / "bad.yaml"
    text = MAPPING.read_text(encoding="utf-8").replace("  skip_lines: 2\n", "  skip_lines: 2\n  skip_matching: ['(']\n")
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match="skip_matching: not a regular expression"):
        convert("fixed-width", DUMP, mapping)
