from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from adapters.encoding import MOJIBAKE, canonical_name, check_declared, decide_bytes, detect_encoding
from adapters.errors import SourceError

KAZAKH = "Қазақстан Республикасы;Әлем;Ғалым;Өскемен;Ұлттық;Үкімет;Шаңырақ"
RUSSIAN = "Номер;Дата регистрации;Статус;Выполнено;Исполнитель"


def test_kazakh_bytes_are_read_as_kz1048_never_as_mojibake() -> None:
    data = KAZAKH.encode("kz1048")
    encoding = detect_encoding(data)
    assert encoding == "kz1048"
    text = data.decode(encoding)
    assert text == KAZAKH
    assert not set(text) & MOJIBAKE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (RUSSIAN.encode("cp1251"), "cp1251"),
        (RUSSIAN.encode("cp866"), "cp866"),
        (KAZAKH.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + KAZAKH.encode("utf-8"), "utf-8-sig"),
        (KAZAKH.encode("utf-8")[:-1], "utf-8"),  # a sample cut inside the last letter
    ],
)
def test_detection(data: bytes, expected: str) -> None:
    assert detect_encoding(data) == expected


def test_declaring_cp1251_for_kazakh_text_is_refused() -> None:
    with pytest.raises(SourceError, match="declare encoding kz1048"):
        check_declared(KAZAKH.encode("kz1048"), "windows-1251")
    check_declared(RUSSIAN.encode("cp1251"), "cp1251")  # Russian-only cp1251 is fine


def test_unknown_encoding_is_named() -> None:
    with pytest.raises(SourceError, match="unknown encoding 'latin-9000'"):
        canonical_name("latin-9000")


SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
IKOMEK = SAMPLES / "ikomek-109-astana.csv"


def _mapping(tmp_path: Path, encoding: str | None) -> Path:
    text = (SAMPLES / "ikomek-109-astana.yaml").read_text(encoding="utf-8")
    declared = f"encoding: {encoding}" if encoding else "encoding: auto"
    path = tmp_path / "m.yaml"
    path.write_text(text.replace("encoding: cp1251", declared), encoding="utf-8")
    return path


def _export(tmp_path: Path, late_description: str, codec: str = "kz1048", repeat: int = 40) -> Path:
    """A nightly export whose Russian rows fill well over 64 KiB before a case written in Kazakh, saved in
    ``codec``, as a Kazakh-locale Windows machine writes it."""
    text = IKOMEK.read_bytes().decode("cp1251")
    header, *rows = text.split("\r\n")
    good = [r for r in rows if r.count(";") == header.count(";") and "31.02" not in r and "IK-2024-0212000" not in r]
    good = [r for r in good if ";Выполнено;;" not in r and ";Орындалды;;" not in r]  # closed without a date
    body = []
    for n in range(repeat):
        body += [r.replace("IK-2024-", f"IK-{n:02d}-", 1) for r in good]
    late = next(r for r in rows if r.startswith("IK-2024-0212000")).split(";")
    late[4] = late_description
    body.append(";".join(late))
    path = tmp_path / "export.csv"
    path.write_bytes(("\r\n".join([header, *body]) + "\r\n").encode(codec))
    assert path.stat().st_size > 3 * 65536
    return path


def test_kazakh_letters_after_the_first_64_kib_decide_for_kz1048(convert, tmp_path: Path) -> None:
    description = "Қабанбай батыр даңғылында жол бұзылған"
    result = convert("csv", _export(tmp_path, description), _mapping(tmp_path, None))
    assert result.summary.rejected == 0, result.quarantine[:1]
    assert result.by_local_id("IK-2024-0212000")["description"] == description  # not Ќабанбай
    (note,) = result.summary.notes
    assert note.startswith("encoding kz1048: byte 0x8d at line ")
    assert "is 'Қ' in kz1048 and 'Ќ' in cp1251" in note


def test_a_declared_cp1251_does_not_let_late_kazakh_letters_through(convert, tmp_path: Path) -> None:
    """The mapping says cp1251, the file is KZ-1048: the record whose Kazakh letters would become mojibake is
    quarantined with the reason, in one process and with workers alike; the Russian records are exact."""
    source = _export(tmp_path, "Қабанбай батыр даңғылында жол бұзылған")
    for workers in ("1", "2"):
        result = convert("csv", source, _mapping(tmp_path, "cp1251"), workers=workers)
        s = result.summary
        assert (s.rejected, s.read) == (1, s.accepted + 1)
        (entry,) = result.quarantine
        assert "declare encoding kz1048" in entry["reasons"][0]["message"]
        assert not any(set(str(e.get("description", ""))) & MOJIBAKE for e in result.entities)


def test_only_letters_both_code_pages_have_is_refused_unless_declared(convert, tmp_path: Path) -> None:
    """Ү Ұ Ө Ғ are Ї Ў Ґ Є in cp1251 (Ukrainian, Belarusian): without Ә Қ Ң Һ nothing tells the two apart."""
    source = _export(tmp_path, "Үкімет үйі, Ғалым Өтегенұлы")
    with pytest.raises(SourceError, match=r"cp1251 and kz1048 are equally plausible: byte 0xaf at line \d+"):
        convert("csv", source, _mapping(tmp_path, None))
    result = convert("csv", source, _mapping(tmp_path, "kz1048"))
    assert result.by_local_id("IK-2024-0212000")["description"] == "Үкімет үйі, Ғалым Өтегенұлы"


def test_an_ascii_head_longer_than_the_sample_does_not_decide() -> None:
    """A register whose first thousands of rows are transliterated, then Cyrillic in cp866: the first non-ASCII
    bytes decide, wherever they are (read as UTF-8, every later line would be quarantined as undecodable)."""
    head = "".join(f"IK-{n};26.02.2024 08:14;Yama u ostanovki;Esil\r\n" for n in range(3000)).encode("ascii")
    assert len(head) > 65536
    decision = decide_bytes(head + "IK-X;01.03.2024 10:00;Яма у остановки;Есиль\r\n".encode("cp866"))
    assert decision.encoding == "cp866"
    assert decide_bytes(head).encoding == "utf-8"
    assert "every byte of the file is ASCII" in decide_bytes(head).evidence
