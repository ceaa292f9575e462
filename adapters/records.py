"""What an adapter reads and produces: positions in a source, records, rejections and their reasons.

>>> record = Record(Position("cases.csv", line=2, byte_offset=61), raw="IK-1;...", values=["IK-1"])
>>> record.position.as_dict()
{'file': 'cases.csv', 'line': 2, 'byte_offset': 61}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

Entity = dict[str, Any]


class Position(NamedTuple):
    """Where a record sits in its source: file (or URL/topic), and line, row or record number.

    A named tuple rather than a frozen dataclass: every record gets one, and a frozen dataclass spends five
    ``object.__setattr__`` calls building it.
    """

    file: str
    line: int | None = None
    row: int | None = None
    record: int | None = None
    byte_offset: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Only the parts that are known.

        >>> Position("a.csv", line=3, byte_offset=120).as_dict()
        {'file': 'a.csv', 'line': 3, 'byte_offset': 120}
        """
        out: dict[str, Any] = {"file": self.file}
        for key in ("line", "row", "record", "byte_offset"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a record was rejected: a stable ``code``, the ``field`` or JSON pointer it concerns, a message."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out

    @property
    def key(self) -> str:
        """What the summary groups by: ``code`` and ``field``, without the record-specific message."""
        return f"{self.code} ({self.field})" if self.field else self.code


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that yields no entity, with every reason found.

    >>> Rejection([Reason("unparseable-date", "not a date: '31.02.2024'", "dateRequested")]).reasons[0].code
    'unparseable-date'
    """

    reasons: list[Reason]


@dataclass(slots=True)
class Record:
    """One record as read: its position, the raw form to quarantine, the values to map, and read problems."""

    position: Position
    raw: Any
    values: Any = None
    problems: list[Reason] = field(default_factory=list)
