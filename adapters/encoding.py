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
