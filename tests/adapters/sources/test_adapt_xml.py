from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import SourceError

SAMPLES = Path(__file__).parents[3] / "examples" / "legacy"
SOAP = SAMPLES / "egov-organizations.xml"
MAPPING = SAMPLES / "egov-organizations.yaml"
BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Envelope><Организация><БИН>&lol3;</БИН></Организация></Envelope>
"""


def test_soap_sample(convert) -> None:
    result = convert("xml", SOAP, MAPPING)
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (5, 4, 1)
    assert result.quarantine[0]["reasons"][0]["code"] == "schema-format"  # the mistyped BIN's check digit
    akimat = result.entities[0]
    assert akimat["name"] == {"kk": "Шымкент қаласы әкімдігі", "ru": "Акимат города Шымкент"}
    assert akimat["address"] == {"streetAddress": "проспект Тауке хана, 1", "postalCode": "160012",
                                 "addressLocality": "Шымкент"}  # fmt: skip
    assert akimat["dateRegistered"] == "2004-01-10"


def test_xml_bomb_is_refused_in_one_line(convert, tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(SourceError, match="refused unsafe XML"):
        convert("xml", path, MAPPING)


def test_external_entity_is_refused(convert, tmp_path: Path) -> None:
    path = tmp_path / "xxe.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><Организация>'
        "<БИН>&x;</БИН></Организация></r>",
        encoding="utf-8",
    )
    with pytest.raises(SourceError, match="refused unsafe XML"):
        convert("xml", path, MAPPING)


def test_truncated_document_keeps_the_records_before_the_cut(convert, tmp_path: Path) -> None:
    text = SOAP.read_text(encoding="utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(text[: text.index("<ns2:Организация>", text.index("050340")) + 40], encoding="utf-8")
    result = convert("xml", cut, MAPPING)
    assert (result.summary.read, result.summary.accepted, result.summary.rejected) == (3, 2, 1)
    assert result.quarantine[0]["reasons"][0]["code"] == "malformed-xml"
