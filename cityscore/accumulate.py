"""Per-period accumulators: what a KPI's aggregate needs, kept so that adding and removing an entity is exact.

    >>> acc = Accumulator("median")
    >>> for v in (5, 1, 3): acc.apply((v, True, None), +1)
    >>> acc.apply((5, True, None), -1)
    >>> acc.figure("median", 1, 0).value
    Fraction(2, 1)

Medians and percentiles keep the values in a sorted list (O(log n) to add or remove); distinct counts keep a
multiset of keys, so a key disappears only when the last entity that had it does.

Items arrive in batches (:class:`Delta`): the ledger collects what changed per day and folds it into the day,
week and month at once. Added values wait unsorted until a figure needs them, so a backfill sorts each period's
values once instead of inserting them one by one. One accumulator can serve several aggregates (the median and
the 95th percentile of one latency keep the same values), so :meth:`Accumulator.figure` names the aggregate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sortedcontainers import SortedList

from cityscore.formula import Item
from cityscore.periods import HOUR_MS

ORDERED = frozenset({"median", "p95"})
"""Aggregates that need every value, in order."""
KEYED = frozenset({"distinct", "coverage"})
"""Aggregates that need the multiset of keys."""


@dataclass(frozen=True)
class Figure:
    """A KPI's result for one period: value (exact), and what it was computed from."""

    value: Fraction | None
    numerator: int | None
    denominator: int | None
    entities: int
    counts: dict[str, int] = field(default_factory=dict)


class Delta:
    """What a batch of items changes, reduced once for every period it reaches.

    ``added`` and ``removed`` are flat: ``[value, hit, key, value, hit, key, ...]``, so a batch is a list the
    ledger extends, not a list of tuples it keeps (see :mod:`cityscore.ledger`). A batch reaches up to six
    accumulators (day, week and month; whole city and group), so what each of them would do per item is done here
    once: the added keys are counted, and for ``ordered`` aggregates the added values sorted, so that each
    accumulator merges sorted runs instead of sorting every value again (bench/kpi.py, 1,000,000 entities: the
    figures of a backfill cost ~4 s of CPU, ~2.8 s of it sorting, ~1 s counting keys)."""

    __slots__ = ("added_keys", "added_values", "entities", "hits", "removed_keys", "removed_values", "total")

    def __init__(self, added: Sequence[Any], removed: Sequence[Any], *, ordered: bool = False) -> None:
        self.entities = (len(added) - len(removed)) // 3
        self.hits = sum(added[1::3]) - sum(removed[1::3])
        self.added_values = [value for value in added[0::3] if value is not None]
        self.removed_values = [value for value in removed[0::3] if value is not None]
        self.total = sum(self.added_values) - sum(self.removed_values)
        if ordered:
            self.added_values.sort()
        keys = [key for key in added[2::3] if key is not None]
        self.added_keys: Counter[tuple[Any, ...]] = Counter(keys) if keys else _NO_KEYS
        self.removed_keys = [key for key in removed[2::3] if key is not None]


_NO_KEYS: Counter[tuple[Any, ...]] = Counter()
"""Shared by every batch without keys: never changed."""


class Accumulator:
    __slots__ = ("_unsorted", "hits", "keys", "n", "total", "values")

    def __init__(self, *aggregates: str) -> None:
        """An empty accumulator that can answer every aggregate in ``aggregates``."""
        self.n = 0
        self.hits = 0
        self.total = 0
        self.values: SortedList | None = SortedList() if ORDERED.intersection(aggregates) else None
        self._unsorted: list[int] = []
        self.keys: Counter[tuple[Any, ...]] | None = Counter() if KEYED.intersection(aggregates) else None

    def apply(self, item: Item, sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one entity's contribution."""
        self.fold(Delta(item, ()) if sign > 0 else Delta((), item))

    def fold(self, delta: Delta) -> None:
        """Take in a batch: its additions, then its removals (each removed item was added before or in it)."""
        self.n += delta.entities
        self.hits += delta.hits
        self.total += delta.total
        if self.values is not None:
            self._unsorted += delta.added_values
            if delta.removed_values:
                values = self._sorted()
                for value in delta.removed_values:
                    values.remove(value)
        keys = self.keys
        if keys is not None:
            keys.update(delta.added_keys)
            for key in delta.removed_keys:
                left = keys[key] - 1
                if left:
                    keys[key] = left
                else:
                    del keys[key]

    def _sorted(self) -> SortedList:
        values = self.values
        assert values is not None
        if self._unsorted:
            values.update(self._unsorted)  # sorts the batch; rebuilds the list when the batch is a large share
            self._unsorted = []
        return values

    def figure(self, aggregate: str, scale: int, start_hour: int) -> Figure:
        """The result; ``start_hour`` (hours since the epoch) is where the period begins, for coverage."""
        n = self.n
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
        if aggregate in ORDERED:
            values = self._sorted()
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
