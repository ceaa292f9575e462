"""The exceptions of :mod:`cityscore`, one tree.

CityScoreError
├── BookError        the KPI book or its overrides are not valid (names the file and the offending place)
├── UnknownKpi       a KPI code the book does not define
└── BadPeriod        a period that is not day/week/month or a date that does not parse
"""

from __future__ import annotations


class CityScoreError(Exception):
    """Base of every error this package raises."""


class BookError(CityScoreError):
    def __init__(self, source: str, pointer: str, message: str) -> None:
        super().__init__(f"{source}: {pointer or '/'}: {message}")
        self.source = source
        self.pointer = pointer
        self.message = message


class UnknownKpi(CityScoreError):
    def __init__(self, code: str, known: list[str]) -> None:
        super().__init__(f"unknown KPI {code!r}; known: {', '.join(known)}")
        self.code = code


class BadPeriod(CityScoreError):
    pass
