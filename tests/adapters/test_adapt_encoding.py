from __future__ import annotations

import codecs

import pytest

from adapters.encoding import MOJIBAKE, canonical_name, check_declared, detect_encoding
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
