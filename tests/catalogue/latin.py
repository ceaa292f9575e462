"""Find text a Kazakh or Russian reader would meet in English: Latin-script words outside an allow-list.

Skipped, because they are not interface text: ``<code>``, ``<pre>``, ``<script>``, ``<style>`` and anything
inside ``translate="no"`` (names and notes as their source wrote them, codes). Attributes a reader hears or
sees (``aria-label``, ``title``, ``alt``, ``placeholder``) are scanned too. Words holding a digit are codes
(``PM2.5``, ``AQ-017``) and pass; so do the names on :data:`ALLOWED`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED = {
    "Qala",  # the product's name
    "CKAN",
    "API",
    "DCAT",
    "DCAT-AP",
    "JSON",
    "JSON-LD",
    "CSV",
    "GeoJSON",
    "CC",
    "BY",
    "NO",  # NO₂, nitrogen dioxide
    "CityScore",
    "English",  # the language switch names each language in itself
    "C",  # °C
    "Python",  # a programming language and a tool, named as they are
    "ckanapi",
}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.'-]*")
SKIPPED = {"code", "pre", "script", "style"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SPOKEN = ("aria-label", "title", "alt", "placeholder")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # True where the element (or an ancestor) is skipped
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        skipped = bool(self.stack and self.stack[-1]) or tag in SKIPPED or dict(attrs).get("translate") == "no"
        if not skipped:
            for name, value in attrs:
                if name in SPOKEN and value:
                    self._scan(value)
        if tag not in VOID:
            self.stack.append(skipped)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self._scan(data)

    def _scan(self, text: str) -> None:
        for found in WORD.findall(text):
            word = found.rstrip(".'-")
            if word and word not in ALLOWED and not any(ch.isdigit() for ch in word):
                self.found.append(word)


def untranslated(page: str) -> list[str]:
    """The Latin-script words of ``page`` that are not codes, units or names on the allow-list."""
    scanner = _Scanner()
    scanner.feed(page)
    return scanner.found
