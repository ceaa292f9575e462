"""Which legacy code page a file is in, and a guard against decoding Kazakh text with the wrong one.

KZ-1048 bytes decoded as cp1251 raise no error: ``Қазақстан`` silently becomes ``Ќазаќстан``. Both code pages
agree on Russian letters, so the detector prefers ``kz1048`` whenever the bytes contain a letter that only it has,
and a declared ``cp1251`` that would produce that mojibake is refused with a clear message.

    >>> detect_encoding("Қазақстан Республикасы;Астана".encode("kz1048"))
    'kz1048'
    >>> detect_encoding("Выполнено;Астана".encode("cp1251"))
    'cp1251'
    >>> detect_encoding("Выполнено;Астана".encode("cp866"))
    'cp866'
"""

from __future__ import annotations

import codecs

from adapters.errors import SourceError

SUPPORTED = ("utf-8", "utf-8-sig", "cp1251", "kz1048", "cp866")
KAZAKH_ONLY = frozenset("ӘәҒғҚқҢңӨөҰұҮүҺһ")
"""Kazakh letters that cp1251 lacks; ``І і`` exist in both code pages and prove nothing."""
MOJIBAKE = frozenset("ЌЈЄЎЇЋЂќјєўїћђ")
"""What KZ-1048's Kazakh letters look like through cp1251."""
_SINGLE_BYTE = ("kz1048", "cp1251", "cp866")


_CONTAINERS = (
    (b"PK\x03\x04", None),  # told apart below: XLSX, ODS or another ZIP archive
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (XLS); read it with the xls adapter"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
)


def what_it_is(sample: bytes) -> str | None:
    """What a file that should be text really is, from its first bytes; None when it is text.

    Each of these made the CSV reader fail with a message about line ends or NUL bytes, or (a UTF-8 byte-order
    mark) pass silently into the first header name.

    >>> what_it_is(codecs.BOM_UTF16_LE + "Номер\tДата".encode("utf-16-le"))  # doctest: +ELLIPSIS
    'UTF-16 text (what Excel saves as "Unicode Text", tab-separated); ...'
    >>> what_it_is("Номер;Дата".encode("cp1251")) is None
    True
    """
    for magic, kind in _CONTAINERS:
        if sample.startswith(magic):
            if kind is not None:
                return kind
            if b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet" in sample[:100]:
                return "an OpenDocument spreadsheet (ODS) under another name; read it with the ods adapter"
            if b"[Content_Types].xml" in sample or b"xl/" in sample:
                return "an Excel workbook (XLSX) under another name; read it with the xlsx adapter"
            return "a ZIP archive; unpack it first"
    utf16 = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        len(sample) >= 16 and sample[1::2].count(0) > len(sample) // 4  # ASCII in UTF-16-LE without a BOM
    )
    if utf16:
        return (
            'UTF-16 text (what Excel saves as "Unicode Text", tab-separated); save it as "CSV UTF-8", or convert '
            "it (iconv -f UTF-16 -t UTF-8) and read it with encoding utf-8 and delimiter '\\t'"
        )
    return None


def canonical_name(name: str) -> str:
    """The codec's own name for ``name``; SourceError for a code page Qala does not read.

    >>> canonical_name("windows-1251")
    'cp1251'
    """
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise SourceError(f"unknown encoding {name!r} (supported: {', '.join(SUPPORTED)})") from None
    return info.name


def _cyrillic_share(text: str) -> float:
    wide = [c for c in text if ord(c) > 127]
    if not wide:
        return 0.0
    return sum(1 for c in wide if "\u0400" <= c <= "\u04ff" and c not in MOJIBAKE) / len(wide)


def _is_utf8(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"  # a sample cut inside a character is still UTF-8
    return True


def detect_encoding(sample: bytes) -> str:
    """The most plausible of :data:`SUPPORTED` for a sample of a file (its first 64 KiB are plenty)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if _is_utf8(sample):
        return "utf-8"
    as_kz = sample.decode("kz1048", errors="replace")
    if any(c in KAZAKH_ONLY for c in as_kz) and _cyrillic_share(as_kz) >= _cyrillic_share(
        sample.decode("cp866", errors="replace")
    ):
        return "kz1048"
    scores = {name: _cyrillic_share(sample.decode(name, errors="replace")) for name in _SINGLE_BYTE[1:]}
    return max(scores, key=lambda name: scores[name])


def check_declared(sample: bytes, encoding: str) -> None:
    """Refuse a declared code page that would turn this file's Kazakh letters into Ќ/Ј/Є.

    >>> check_declared("Әлем".encode("kz1048"), "cp1251")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adapters.errors.SourceError: the file is declared cp1251, but its bytes decode to Kazakh letters in kz1048 ...
    """
    name = canonical_name(encoding)
    if name not in ("utf-8", "utf-8-sig") and any(b > 127 for b in sample) and _is_utf8(sample):
        raise SourceError(f"the file is declared {encoding}, but its bytes are UTF-8; declare utf-8")
    if name != "cp1251":
        return
    as_cp1251 = sample.decode("cp1251", errors="replace")
    as_kz = sample.decode("kz1048", errors="replace")
    if any(c in MOJIBAKE for c in as_cp1251) and any(c in KAZAKH_ONLY for c in as_kz):
        raise SourceError(
            "the file is declared cp1251, but its bytes decode to Kazakh letters in kz1048 "
            "(cp1251 would give Ќ/Ј/Є); declare encoding kz1048"
        )
