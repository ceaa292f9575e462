"""The adapter contract: read a source into records, map each record to a canonical entity or a rejection.

An adapter is any class with the attributes and methods of :class:`Adapter`; it is registered under a name in
the entry-point group ``qala.adapters`` (built-ins and third-party packages alike) and constructed with the
source (a path or a URL), an optional :class:`~adapters.mapping.Mapping` and string options::

    class MyAdapter:
        name = "my-system"
        summary = "My legacy system's nightly export"
        needs_mapping = False

        def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None):
            self.path = Path(source)

        def records(self) -> Iterator[Record]:
            for n, line in enumerate(self.path.open(encoding="utf-8"), start=1):
                yield Record(Position(file=str(self.path), line=n), raw=line, values={"line": line})

        def map(self, record: Record) -> Entity | Rejection:
            ...

        def progress(self) -> tuple[int, int | None]:
            return 0, None

A record that could not even be read (undecodable bytes, too few columns) is yielded with ``problems`` set, so it
is counted and quarantined with its position instead of disappearing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar, Protocol, runtime_checkable

from adapters.mapping import Mapping
from adapters.records import Entity, Record, Rejection


@runtime_checkable
class Adapter(Protocol):
    """What the pipeline needs from an adapter."""

    name: ClassVar[str]
    summary: ClassVar[str]
    needs_mapping: ClassVar[bool]

    def records(self) -> Iterator[Record]:
        """Stream the source's records in order, in constant memory."""
        ...

    def map(self, record: Record) -> Entity | Rejection:
        """One canonical entity (not yet validated) or the reasons there is none."""
        ...

    def progress(self) -> tuple[int, int | None]:
        """Work done and total, in the adapter's unit (bytes for files); total None when unknown."""
        ...


AdapterFactory = Callable[[str, Mapping | None, dict[str, str]], Adapter]
"""How the registry builds an adapter: ``factory(source, mapping, options)``; an Adapter class is one."""
