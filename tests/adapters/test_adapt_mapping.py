from __future__ import annotations

import ast
from pathlib import Path

import pytest

from adapters.errors import MappingError
from adapters.mapping import Mapping
from adapters.records import Rejection

DOC = {
    "type": "ServiceRequest",
    "constants": {"city": "almaty"},
    "lookups": {"status": {"closed": ["Выполнено", "Орындалды"], "open": ["В работе"]}},
    "fields": {
        "serviceRequestId": {"column": ["№ обращения", "Номер"], "required": True},
        "status": {"column": ["Статус"], "lookup": "status", "required": True},
        "dateRequested": {"column": ["Дата"], "convert": "local_datetime"},
        "address.district": {"column": ["Район"]},
        "location": {"point": {"lon": ["Долгота"], "lat": ["Широта"]}},
        "dateModified": {"first_of": ["dateClosed", "dateRequested"]},
        "id": {"template": "urn:ngsi-ld:ServiceRequest:{city}:{serviceRequestId}"},
    },
}
HEADERS = ["Номер", "СТАТУС", "Дата", "Район", "Долгота", "Широта"]


def test_row_becomes_nested_entity_through_synonyms_lookups_and_templates() -> None:
    compiled = Mapping.from_dict(DOC).compile(HEADERS)
    entity = compiled.apply(["A-1", "Орындалды", "01.03.2024 09:00", "Медеуский", "76,95", "43,25"])
    assert entity == {
        "type": "ServiceRequest",
        "city": "almaty",
        "serviceRequestId": "A-1",
        "status": "closed",
        "dateRequested": "2024-03-01T09:00:00+05:00",
        "address": {"district": "Медеуский"},
        "location": {"type": "Point", "coordinates": [76.95, 43.25]},
        "dateModified": "2024-03-01T09:00:00+05:00",
        "id": "urn:ngsi-ld:ServiceRequest:almaty:A-1",
    }


def test_every_bad_field_is_reported_at_once() -> None:
    compiled = Mapping.from_dict(DOC).compile(HEADERS)
    result = compiled.apply(["", "Может быть", "32.01.2024", "", "", ""])
    assert isinstance(result, Rejection)
    assert {(r.code, r.field) for r in result.reasons} == {
        ("missing-value", "serviceRequestId"),
        ("unknown-value", "status"),
        ("invalid-value", "dateRequested"),
        ("invalid-value", "id"),
    }


def test_missing_required_column_names_what_was_looked_for() -> None:
    with pytest.raises(MappingError, match=r"field 'status': no column named any of \['Статус'\]"):
        Mapping.from_dict(DOC).compile(["Номер", "Дата"])


def test_multi_row_header_matches_on_its_last_part() -> None:
    doc = {"type": "ServiceRequest", "fields": {"contactPhone": {"column": ["Телефон"], "convert": "phone_kz"}}}
    compiled = Mapping.from_dict(doc).compile(["Заявитель / ФИО", "Заявитель / Телефон"])
    assert compiled.apply(["Ким Анна", "87015550000"]) == {"type": "ServiceRequest", "contactPhone": "+77015550000"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fields": {"x": {"column": ["a"], "convert": "roman_numerals"}}}, "unknown converter 'roman_numerals'"),
        ({"fields": {"x": {"column": ["a"], "lookup": "nope"}}}, "unknown lookup 'nope'"),
        ({"fields": {"x": {"column": ["a"], "const": 1}}}, "give exactly one of"),
        ({"fields": {"x": {"colum": ["a"]}}}, r"unknown key\(s\) \['colum'\]"),
        ({"type": None}, "'type'"),
        ({"fields": {}}, "'fields'"),
    ],
)
def test_malformed_mappings_are_refused_with_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        Mapping.from_dict({**DOC, **change})


def test_load_reports_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("type: [unclosed", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid YAML"):
        Mapping.load(path)
    with pytest.raises(MappingError, match="cannot read mapping"):
        Mapping.load(tmp_path / "absent.yaml")


def test_template_keeps_literal_braces_and_reports_what_it_lacks() -> None:
    doc = {
        "type": "ServiceRequest",
        "constants": {"city": "almaty"},
        "fields": {
            "serviceRequestId": {"column": ["Номер"]},
            "description": {"template": "{not a field} } {city}/{serviceRequestId} {"},
        },
    }
    compiled = Mapping.from_dict(doc).compile(["Номер"])
    entity = compiled.apply(["A-1"])
    assert isinstance(entity, dict)
    assert entity["description"] == "{not a field} } almaty/A-1 {"
    rejected = compiled.apply([""])
    assert isinstance(rejected, Rejection)
    assert rejected.reasons[0].message == "template needs 'serviceRequestId', which this record lacks"


def test_template_reads_fields_and_constants_as_they_stand_when_it_runs() -> None:
    """A constant that a rule sets again is the constant until that rule has run, and its value after; of several
    fields a record lacks, the leftmost is named; scratch and nested fields are read."""
    doc = {
        "type": "ServiceRequest",
        "constants": {"city": "almaty", "kind": "k"},
        "fields": {
            "early": {"template": "{city}|{kind}"},
            "city": {"column": ["Город"]},
            "_a": {"column": ["А"]},
            "address.district": {"column": ["Район"]},
            "address.streetAddress": {"template": "{_a}/{kind}/{address.district}/{city}"},
            "late": {"template": "{city}"},
            "dateModified": {"first_of": ["_a", "kind"]},
        },
    }
    compiled = Mapping.from_dict(doc).compile(["Город", "А", "Район"])
    entity = compiled.apply(["astana", "1", "Есиль"])
    assert entity == {
        "type": "ServiceRequest",
        "city": "astana",
        "kind": "k",
        "early": "almaty|k",
        "address": {"district": "Есиль", "streetAddress": "1/k/Есиль/astana"},
        "late": "astana",
        "dateModified": "1",
    }
    assert list(entity) == ["type", "city", "kind", "early", "address", "late", "dateModified"]  # type: ignore[arg-type]
    rejected = compiled.apply(["", " ", ""])
    assert isinstance(rejected, Rejection)
    assert [(r.message, r.field) for r in rejected.reasons] == [
        ("template needs '_a', which this record lacks", "address.streetAddress")
    ]


def test_const_that_cannot_convert_rejects_every_record() -> None:
    doc = {"type": "ServiceRequest", "fields": {"contactPhone": {"const": "нет", "convert": "phone_kz"}}}
    compiled = Mapping.from_dict(doc).compile([])
    for _ in range(2):
        result = compiled.apply([])
        assert isinstance(result, Rejection)
        assert result.reasons[0].code == "invalid-value"


def test_remembered_conversions_and_lookups_answer_as_the_first_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.compiled._MEMO_LIMIT", 2)  # forget often, to exercise starting afresh
    doc = {
        "type": "ServiceRequest",
        "lookups": {"status": {"closed": ["Выполнено"], "open": ["1"]}},
        "fields": {
            "status": {"column": ["Статус"], "lookup": "status"},
            "firstContactResolved": {"column": ["Решено"], "convert": "boolean"},
            "dateRequested": {"column": ["Дата"], "convert": "local_datetime"},
        },
    }
    compiled = Mapping.from_dict(doc).compile(["Статус", "Решено", "Дата"])
    rows = [["Выполнено", "Да", "29.02.2024 23:00"], ["1", "1", "01.03.2024 00:00"], [1, "нет", ""], [True, "", ""]]
    first = [compiled.apply(row) for row in rows]
    again = [compiled.apply(row) for row in rows * 3][-4:]
    assert again == first
    assert first[1] == {
        "type": "ServiceRequest",
        "status": "open",
        "firstContactResolved": True,
        "dateRequested": "2024-03-01T00:00:00+05:00",
    }
    assert first[2] == {"type": "ServiceRequest", "status": "open", "firstContactResolved": False}
    assert isinstance(first[3], Rejection)  # True is equal to 1 as a key, but it is the word "true", not "1"


def test_names_from_the_mapping_cannot_become_code() -> None:
    """The mapping is written out as a Python function; every name in it is quoted, so a target, a header, a
    template or a constant holding quotes, line breaks or braces is data, not code."""
    hostile = "x'] = 1\nimport os  # {"
    doc = {
        "type": "ServiceRequest",
        "constants": {hostile: "c"},
        "fields": {
            "serviceRequestId": {"const": "\\'; raise SystemExit\n"},
            hostile + "2": {"column": [hostile]},
            "t": {"template": "{x} '\"\n{serviceRequestId}"},
            "first": {"first_of": [hostile + "2"]},
        },
    }
    compiled = Mapping.from_dict(doc).compile([hostile])
    entity = compiled.apply(["v"])
    assert isinstance(entity, Rejection)  # {x} is not a field: the template says so, as data
    assert entity.reasons[0].message == "template needs 'x', which this record lacks"
    doc["fields"]["t"] = {"template": "'\"\n{serviceRequestId}}"}  # type: ignore[index]
    entity = Mapping.from_dict(doc).compile([hostile]).apply(["v"])
    assert entity == {
        "type": "ServiceRequest",
        hostile: "c",
        "serviceRequestId": "\\'; raise SystemExit\n",
        hostile + "2": "v",
        "t": "'\"\n\\'; raise SystemExit\n}",
        "first": "v",
    }
    tree = ast.parse(compiled.source)
    assert [type(node) for node in tree.body] == [ast.FunctionDef]
    assert not any(isinstance(node, ast.Import | ast.ImportFrom | ast.Raise) for node in ast.walk(tree))


def test_text_cells_mode_maps_as_the_general_one() -> None:
    """A source whose cells are all text compiles without a type test per cell, with the same results."""
    rows = [
        ["A-1", "Орындалды", "01.03.2024 09:00", "Медеуский", "76,95", "43,25"],
        ["", "Может быть", "32.01.2024", " ", "", ""],
        ["A-2", " В работе ", "\t", "", "1", "2"],
        ["A-3"],
        ["A-4", "Орындалды", "", "", "76,95", " "],  # a remembered longitude, a blank latitude: no point
        ["A-5", "Орындалды", "", "", "43,25", "76,95"],
    ]
    general = Mapping.from_dict(DOC).compile(HEADERS)
    text = Mapping.from_dict(DOC).compile(HEADERS, text_cells=True)
    assert "isinstance" in general.source
    assert "isinstance" not in text.source
    for row in rows * 2:  # twice: the second time from what the converters remember
        assert text.apply(row) == general.apply(row)


def test_first_of_nothing_or_of_names_that_are_not_text() -> None:
    """An empty first_of list gives the default; a name that is not text (YAML reads 2024 as a number) matches
    no field, not even one called "2024"."""
    doc = {"type": "T", "constants": {"2024": "c"}, "fields": {"x": {"first_of": [], "default": "d"}}}
    assert Mapping.from_dict(doc).compile([]).apply([]) == {"type": "T", "2024": "c", "x": "d"}
    doc["fields"] = {"x": {"first_of": [2024]}}
    assert Mapping.from_dict(doc).compile([]).apply([]) == {"type": "T", "2024": "c"}
