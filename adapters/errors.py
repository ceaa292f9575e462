"""Every error the adapters raise, in one tree.

    AdapterError                  anything that stops a run; the CLI prints it as one line
    ├── UnknownAdapter            no adapter registered under that name
    ├── MappingError              a mapping file is malformed or does not fit the source's columns
    ├── SourceError               the source cannot be read at all (missing, wrong encoding, unsafe XML, ...)
    │   └── SourceUnavailable     a network source (HTTP, MQTT) cannot be reached
    ├── PushError                 the hub refused or never answered a batch; the state file says where to resume
    └── AccountingError           read != accepted + rejected: a bug, never a data problem

``ConversionError`` is not in the tree on purpose: it concerns one value of one record, and the pipeline turns
it into a rejection reason instead of stopping.

    >>> try:
    ...     raise MappingError("field 'status': unknown lookup 'statuses'")
    ... except AdapterError as exc:
    ...     print(exc)
    field 'status': unknown lookup 'statuses'
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class: a failure that ends a run, reported as one line."""


class UnknownAdapter(AdapterError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no adapter named {name!r} (known: {', '.join(known) or 'none'})")
        self.name = name


class MappingError(AdapterError):
    """The mapping is wrong: a bad YAML key, an unknown converter, a column that the source lacks."""


class SourceError(AdapterError):
    """The source as a whole cannot be read."""


class SourceUnavailable(SourceError):
    """A network source did not answer."""


class PushError(AdapterError):
    """Pushing to the hub failed after retries."""


class AccountingError(AdapterError):
    """The counters disagree: a record was lost or counted twice."""


class ConversionError(ValueError):
    """One value could not be converted; becomes a rejection reason, never stops a run.

    >>> str(ConversionError("not a date: '31.02.2024'"))
    "not a date: '31.02.2024'"
    """
