"""Which legacy code page a file is in, and a guard against decoding Kazakh text with the wrong one.

KZ-1048 bytes decoded as cp1251 raise no error: ``Қазақстан`` silently becomes ``Ќазаќстан``. The two code pages
differ in sixteen bytes only. Eight of them (:data:`KZ_EVIDENCE`) are Қ қ Һ һ Ә ә Ң ң in KZ-1048 and
Macedonian or Serbian letters (Ќ ќ Ћ ћ Ј ј Ѕ ѕ) in cp1251, which no Russian or Kazakh text has: one of them
anywhere in the file decides for ``kz1048``. The other eight (:data:`EITHER`) are Ұ ұ Ө ө Ғ ғ Ү ү in KZ-1048 and
Ukrainian or Belarusian letters in cp1251: they prove nothing, and a file with only those is refused unless
the mapping names its encoding. :func:`decide` looks at the whole file (in one pass of fast byte searches, and
only when its first 64 KiB leave the question open), and says why it chose what it chose.

    >>> detect_encoding("Қазақстан Республикасы;Астана".encode("kz1048"))
    'kz1048'
    >>> detect_encoding("Выполнено;Астана".encode("cp1251"))
    'cp1251'
    >>> detect_encoding("Выполнено;Астана".encode("cp866"))
    'cp866'
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import SourceError

SUPPORTED = ("utf-8", "utf-8-sig", "cp1251", "kz1048", "cp866")
KAZAKH_ONLY = frozenset("ӘәҒғҚқҢңӨөҰұҮүҺһ")
"""Kazakh letters that cp1251 lacks; ``І і`` exist in both code pages and prove nothing."""
MOJIBAKE = frozenset("ЌЈЄЎЇЋЂќјєўїћђ")
"""What KZ-1048's Kazakh letters look like through cp1251."""
_SINGLE_BYTE = ("kz1048", "cp1251", "cp866")
KZ_EVIDENCE = bytes([0x8D, 0x8E, 0x9D, 0x9E, 0xA3, 0xBC, 0xBD, 0xBE])
"""Bytes that are Kazakh letters in KZ-1048 and Macedonian/Serbian ones in cp1251."""
EITHER = bytes([0xA1, 0xA2, 0xA5, 0xB4, 0xAA, 0xBA, 0xAF, 0xBF])
"""Bytes that are Kazakh letters in KZ-1048 and Ukrainian/Belarusian ones in cp1251."""
_KZ_EVIDENCE = re.compile(b"[" + re.escape(KZ_EVIDENCE) + b"]")
_EITHER = re.compile(b"[" + re.escape(EITHER) + b"]")
_NON_ASCII = re.compile(b"[\x80-\xff]")
SCAN_BYTES = 1 << 20


@dataclass(frozen=True)
class Decision:
    """An encoding and the evidence for it, in words a user can check.

    >>> decide_bytes("Номер;Статус".encode("cp1251")).encoding
    'cp1251'
    """

    encoding: str
    evidence: str

    def note(self) -> str:
        return f"encoding {self.encoding}: {self.evidence}"


def _where(data: bytes, index: int, base: int, lines_before: int) -> str:
    line = lines_before + data.count(b"\n", 0, index) + 1
    return f"line {line} (byte {base + index})"


def _letter(byte: int, encoding: str) -> str:
    return bytes([byte]).decode(encoding)


def _scan(chunks: Iterable[bytes], pattern: re.Pattern[bytes]) -> tuple[int, str, int] | None:
    """The first byte matching ``pattern`` in the chunks of a whole file, where it is in words, and its offset."""
    base = lines = 0
    for chunk in chunks:
        match = pattern.search(chunk)
        if match:
            return chunk[match.start()], _where(chunk, match.start(), base, lines), base + match.start()
        base += len(chunk)
        lines += chunk.count(b"\n")
    return None


def decide_chunks(sample: bytes, chunks: Callable[[], Iterable[bytes]]) -> Decision:
    """The encoding of a whole file given its first bytes and a way to read all of it in chunks (called only when
    the sample leaves the question open); SourceError when cp1251 and kz1048 stay equally plausible."""
    if sample.startswith(codecs.BOM_UTF8):
        return Decision("utf-8-sig", "the file starts with a UTF-8 byte-order mark")
    if sample.isascii():
        found = _scan(chunks(), _NON_ASCII)
        if found is None:
            return Decision("utf-8", "every byte of the file is ASCII, which every supported encoding reads alike")
        sample = _window(chunks(), found[2])
    if _is_utf8(sample):
        return Decision("utf-8", "the non-ASCII bytes of the first 64 KiB are valid UTF-8")
    cyrillic = {name: _cyrillic_share(sample.decode(name, errors="replace")) for name in ("cp1251", "cp866")}
    if cyrillic["cp866"] > cyrillic["cp1251"]:
        share = cyrillic["cp866"]
        return Decision("cp866", f"{share:.0%} of the non-ASCII characters are Cyrillic letters in cp866")
    kazakh = _scan(chunks(), _KZ_EVIDENCE)
    if kazakh is not None:
        byte, where, _ = kazakh
        return Decision(
            "kz1048",
            f"byte 0x{byte:02x} at {where} is {_letter(byte, 'kz1048')!r} in kz1048 and {_letter(byte, 'cp1251')!r} "
            "in cp1251, a letter no Russian or Kazakh text has",
        )
    either = _scan(chunks(), _EITHER)
    if either is not None:
        byte, where, _ = either
        raise SourceError(
            f"cp1251 and kz1048 are equally plausible: byte 0x{byte:02x} at {where} reads "
            f"{_letter(byte, 'kz1048')!r} in kz1048 and {_letter(byte, 'cp1251')!r} in cp1251, and no byte of the "
            "file tells them apart; declare the encoding (source.encoding in the mapping, or --encoding)"
        )
    return Decision("cp1251", "Cyrillic text; cp1251 and kz1048 read every byte of this file alike")


def _window(chunks: Iterable[bytes], offset: int, size: int = 1 << 16) -> bytes:
    """``size`` bytes of the file from ``offset`` on: a sample for a file whose head is ASCII."""
    parts: list[bytes] = []
    base = 0
    for chunk in chunks:
        if base + len(chunk) > offset:
            parts.append(chunk[max(offset - base, 0) :])
            if sum(map(len, parts)) >= size:
                break
        base += len(chunk)
    return b"".join(parts)[:size]


def decide_bytes(data: bytes) -> Decision:
    """:func:`decide_chunks` for a file held in memory."""
    return decide_chunks(data[: 1 << 16], lambda: [data])


def file_chunks(path: str | Path) -> Callable[[], Iterator[bytes]]:
    """A way to read a file in chunks, again each time it is called."""

    def read() -> Iterator[bytes]:
        with Path(path).open("rb") as stream:
            while chunk := stream.read(SCAN_BYTES):
                yield chunk

    return read


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
    """The most plausible of :data:`SUPPORTED` for a sample of a file; :func:`decide` for a whole file."""
    try:
        return decide_bytes(sample).encoding
    except SourceError:
        return "kz1048" if any(c in KAZAKH_ONLY for c in sample.decode("kz1048", errors="replace")) else "cp1251"


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
