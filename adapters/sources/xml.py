"""XML and SOAP exports, parsed safely and streamed one record element at a time.

Parsing goes through defusedxml: a document that declares entities (the "billion laughs" bomb, external
entities reaching for files or the network) is refused before any record is read. Each element named by
``record`` becomes a record whose columns are its descendants' paths of local names (namespaces dropped), e.g.
``БИН`` or ``Адрес/Улица``, and its attributes as ``@name``.

Options: ``record`` (local name of the record element, required).

    $ qala adapt run xml examples/legacy/egov-organizations.xml --mapping examples/legacy/egov-organizations.yaml
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from adapters.conversions import normalise_key
from adapters.errors import MappingError, SourceError
from adapters.records import Position, Reason, Record
from adapters.tabular import TabularAdapter


def local_name(tag: str) -> str:
    """``{urn:1C.ru:commerceml_2}Товар`` -> ``Товар``."""
    return tag.rsplit("}", 1)[-1]


def flatten(element: Element, prefix: str = "") -> dict[str, str]:
    """Leaf texts and attributes of ``element`` keyed by their path below it."""
    out: dict[str, str] = {}
    for key, value in element.attrib.items():
        out[f"{prefix}@{local_name(key)}"] = value
    children = list(element)
    if not children and prefix:
        text = (element.text or "").strip()
        if text:
            out[prefix.rstrip("/")] = text
    for child in children:
        out.update(flatten(child, f"{prefix}{local_name(child.tag)}/"))
    return out


class XmlAdapter(TabularAdapter):
    """Records of an XML/SOAP document mapped by a YAML mapping; see :mod:`adapters.sources.xml`."""

    name = "xml"
    summary = "XML or SOAP export (entities refused), one element per record, mapped by a YAML mapping"

    def rows(self) -> Iterator[Record]:
        record_tag = self.option("record")
        if not record_tag:
            raise MappingError(f"{self.mapping.origin}: the xml adapter needs source.record (the record element)")
        columns = self.mapping.column_names()
        self.bind(columns)
        keys = [normalise_key(c) for c in columns]
        path = Path(self.source)
        if not path.is_file():
            raise SourceError(f"cannot open {path}: no such file")
        self._total = path.stat().st_size
        number = 0
        events: Any = iterparse(str(path), events=("end",), forbid_dtd=False, forbid_entities=True)
        try:
            for _, element in events:
                if local_name(element.tag) != record_tag:
                    continue
                number += 1
                flat = {normalise_key(k): v for k, v in flatten(element).items()}
                element.clear()
                yield Record(Position(str(path), record=number), flat, [flat.get(k) for k in keys])
        except DefusedXmlException as exc:
            raise SourceError(f"{path}: refused unsafe XML ({type(exc).__name__}: entities are not allowed)") from exc
        except ParseError as exc:
            line, column = exc.position
            yield Record(
                Position(str(path), record=number + 1, line=line),
                None,
                [],
                [Reason("malformed-xml", f"{exc}: the document is cut or broken at line {line}, column {column}")],
            )
