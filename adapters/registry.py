"""Adapters by name, loaded from the entry-point group ``qala.adapters``.

Qala's own adapters are registered in its ``pyproject.toml`` exactly as a third-party package registers its own::

    [project.entry-points."qala.adapters"]
    my-system = "my_package.adapter:MyAdapter"

    >>> registry = AdapterRegistry.load()
    >>> "csv" in registry.names()
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from adapters.base import Adapter, AdapterFactory
from adapters.errors import AdapterError, UnknownAdapter
from adapters.mapping import Mapping

ENTRY_POINT_GROUP = "qala.adapters"


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    summary: str
    needs_mapping: bool
    target: str
    """Where it comes from: ``module:attribute``."""


class AdapterRegistry:
    """Every adapter registered under :data:`ENTRY_POINT_GROUP`; loaded lazily, one at a time."""

    def __init__(self, entries: list[EntryPoint]) -> None:
        self._entries = {e.name: e for e in entries}

    @classmethod
    def load(cls, group: str = ENTRY_POINT_GROUP) -> AdapterRegistry:
        return cls(list(entry_points(group=group)))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def factory(self, name: str) -> AdapterFactory:
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownAdapter(name, self.names())
        try:
            target: Any = entry.load()
        except Exception as exc:  # a broken plugin is reported, not a traceback
            raise AdapterError(f"adapter {name!r} ({entry.value}) could not be loaded: {exc}") from exc
        return cast(AdapterFactory, target)

    def info(self, name: str) -> AdapterInfo:
        target: Any = self.factory(name)
        return AdapterInfo(
            name=name,
            summary=str(getattr(target, "summary", "")),
            needs_mapping=bool(getattr(target, "needs_mapping", False)),
            target=self._entries[name].value,
        )

    def create(
        self, name: str, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None
    ) -> Adapter:
        """Build the adapter ``name`` for ``source``.

        >>> AdapterRegistry.load().create("nope", "x.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        adapters.errors.UnknownAdapter: no adapter named 'nope' (known: ...)
        """
        return self.factory(name)(source, mapping, dict(options or {}))
