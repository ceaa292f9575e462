"""Per-period accumulators: what a KPI's aggregate needs, kept so that adding and removing an entity is exact.

    >>> acc = Accumulator("median")
    >>> for v in (5, 1, 3): acc.apply((v, True, None), +1)
    >>> acc.apply((5, True, None), -1)
    >>> acc.figure(1, 0).value
    Fraction(2, 1)

Medians and percentiles keep the values in a sorted list (O(log n) to add or remove); distinct counts keep a
multiset of keys, so a key disappears only when the last entity that had it does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sortedcontainers import SortedList

from cityscore.formula import Item
from cityscore.periods import HOUR_MS


@dataclass(frozen=True)
class Figure:
    """A KPI's result for one period: value (exact), and what it was computed from."""

    value: Fraction | None
    numerator: int | None
    denominator: int | None
    entities: int
    counts: dict[str, int] = field(default_factory=dict)


class Accumulator:
    __slots__ = ("aggregate", "hits", "keys", "n", "total", "values")

    def __init__(self, aggregate: str) -> None:
        self.aggregate = aggregate
        self.n = 0
        self.hits = 0
        self.total = 0
        self.values: SortedList | None = SortedList() if aggregate in ("median", "p95") else None
        self.keys: Counter[tuple[Any, ...]] | None = Counter() if aggregate in ("distinct", "coverage") else None

    def apply(self, item: Item, sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one entity's contribution."""
        value, hit, key = item
        self.n += sign
        self.hits += sign if hit else 0
        if value is not None:
            self.total += sign * value
            if self.values is not None:
                if sign > 0:
                    self.values.add(value)
                else:
                    self.values.remove(value)
        if key is not None and self.keys is not None:
            self.keys[key] += sign
            if self.keys[key] == 0:
                del self.keys[key]

    def figure(self, scale: int, start_hour: int) -> Figure:
        """The result; ``start_hour`` (hours since the epoch) is where the period begins, for coverage."""
        n, aggregate = self.n, self.aggregate
        counts = {"entities": n}
        if aggregate == "count":
            return Figure(Fraction(n), None, None, n, counts)
        if aggregate == "sum":
            return Figure(Fraction(self.total, scale), None, None, n, counts)
        if aggregate == "ratio":
            counts["numerator"] = self.hits
            return Figure(Fraction(self.hits, n) if n else None, self.hits, n, n, counts)
        if aggregate == "mean":
            return Figure(Fraction(self.total, n * scale) if n else None, None, None, n, counts)
        if aggregate in ("median", "p95"):
            values = self.values
            assert values is not None
            if not n:
                return Figure(None, None, None, 0, counts)
            if aggregate == "median":
                middle = n // 2
                doubled = 2 * values[middle] if n % 2 else values[middle - 1] + values[middle]
                return Figure(Fraction(doubled, 2 * scale), None, None, n, counts)
            rank = (95 * n + 99) // 100  # nearest rank: the smallest value with at least 95 % at or below it
            return Figure(Fraction(values[rank - 1], scale), None, None, n, counts)
        keys = self.keys
        assert keys is not None
        counts["distinctKeys"] = len(keys)
        if aggregate == "distinct":
            return Figure(Fraction(len(keys)), None, None, n, counts)
        # coverage: (group, hour) pairs seen / (groups seen x hours from the period's start to the latest hour)
        if not keys:
            return Figure(None, 0, 0, n, counts)
        groups = {key[0] for key in keys}
        hours = max(key[1] for key in keys) - start_hour + 1
        denominator = len(groups) * hours
        return Figure(Fraction(len(keys), denominator), len(keys), denominator, n, counts)


def hour_of(ms: int) -> int:
    return ms // HOUR_MS
