"""Per-period accumulators: what a KPI's aggregate needs, kept so that adding and removing an entity is exact.

    >>> acc = Accumulator("median")
    >>> for v in (5, 1, 3): acc.apply((v, True, None), +1)
    >>> acc.apply((5, True, None), -1)
    >>> acc.figure("median", 1, 0).value
    Fraction(2, 1)

Distinct counts keep a multiset of keys, so a key disappears only when the last entity that had it does.

Items arrive in batches (:class:`Delta`): the ledger collects what changed per day and folds it into the day,
week and month at once. One accumulator can serve several aggregates (the median and the 95th percentile of one
latency keep the same values), so :meth:`Accumulator.figure` names the aggregate.

Medians and percentiles need every value in order, but a value is kept once, sorted, in a :class:`Run` -- the
values of one day (and group) -- not once more in each day, week and month it counts for: an accumulator holds the
runs of the days it covers, and a figure selects its order statistics across them (:func:`select`) rather than
sorting a copy of them all (bench/kpi.py, 1,000,000 entities: the six sorted copies of every latency, day, week and
month for the city and for its feed, cost ~1.5 s of CPU to sort).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

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
    once: the added keys are counted, and for ``ordered`` aggregates the added values sorted, so that the bucket's
    :class:`Run` merges a sorted run into its own (bench/kpi.py, 1,000,000 entities: the figures of a backfill cost
    ~4 s of CPU, ~2.8 s of it sorting, ~1 s counting keys, when every accumulator kept and sorted its values)."""

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


class Run:
    """The values of one bucket (one day; one group or the whole city) of an ordered aggregate, as a sorted list.

    Values are integers (:data:`cityscore.formula.Item`). A batch's added values arrive sorted (:class:`Delta`
    with ``ordered``), so adding them is a merge of two sorted runs; removals are bisected out one by one, or
    filtered out in one pass when there are many."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[int] = []

    def fold(self, delta: Delta) -> None:
        """Take in a batch: its additions, then its removals (each removed value was added before or in it)."""
        values = self.values
        added = delta.added_values
        if added:
            if values:
                values += added
                values.sort()  # two sorted runs when the batch was sorted: a merge
            else:
                values = self.values = sorted(added)
        removed = delta.removed_values
        if len(removed) > _FILTER_FROM:
            gone = Counter(removed)
            kept = []
            for value in values:
                if gone.get(value):
                    gone[value] -= 1
                else:
                    kept.append(value)
            if +gone:
                raise ValueError("removed a value that was never added")
            self.values = kept
        else:
            for value in removed:
                at = bisect_left(values, value)
                if at == len(values) or values[at] != value:
                    raise ValueError("removed a value that was never added")
                del values[at]


_FILTER_FROM = 64
"""From how many removals in one batch a run filters them out in one pass instead of bisecting each."""


def select(runs: Sequence[list[int]], rank: int) -> int:
    """The value at ``rank`` (0-based) in the sorted union of the sorted integer lists ``runs``: the same as
    ``sorted(chain(*runs))[rank]``, found by bisecting the range of values (the smallest value with more than
    ``rank`` values at or below it), without merging the runs."""
    runs = [run for run in runs if run]
    if len(runs) == 1:
        return runs[0][rank]
    low = min(run[0] for run in runs)
    high = max(run[-1] for run in runs)
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(run, middle) for run in runs) > rank:
            high = middle
        else:
            low = middle + 1
    return low


class Accumulator:
    __slots__ = ("hits", "keys", "n", "runs", "total")

    def __init__(self, *aggregates: str) -> None:
        """An empty accumulator that can answer every aggregate in ``aggregates``."""
        self.n = 0
        self.hits = 0
        self.total = 0
        self.runs: list[Run] | None = [] if ORDERED.intersection(aggregates) else None
        """For ordered aggregates, the runs that hold its values: the ledger adds the runs of the buckets it folds
        and folds the batches into them itself (once for all the accumulators a bucket reaches); :meth:`apply`
        keeps one of its own."""
        self.keys: Counter[tuple[Any, ...]] | None = Counter() if KEYED.intersection(aggregates) else None

    def apply(self, item: Item, sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one entity's contribution."""
        delta = Delta(item, (), ordered=True) if sign > 0 else Delta((), item)
        self.fold(delta)
        if self.runs is not None:
            if not self.runs:
                self.runs.append(Run())
            self.runs[0].fold(delta)

    def fold(self, delta: Delta) -> None:
        """Take in a batch's counts and keys: its additions, then its removals (each removed item was added before
        or in it). Its values go to the runs, which the caller folds (:attr:`runs`)."""
        self.n += delta.entities
        self.hits += delta.hits
        self.total += delta.total
        keys = self.keys
        if keys is not None:
            keys.update(delta.added_keys)
            for key in delta.removed_keys:
                left = keys[key] - 1
                if left:
                    keys[key] = left
                else:
                    del keys[key]

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
            if not n:
                return Figure(None, None, None, 0, counts)
            assert self.runs is not None
            runs = [run.values for run in self.runs]
            if aggregate == "median":
                middle = n // 2
                doubled = 2 * select(runs, middle) if n % 2 else select(runs, middle - 1) + select(runs, middle)
                return Figure(Fraction(doubled, 2 * scale), None, None, n, counts)
            rank = (95 * n + 99) // 100  # nearest rank: the smallest value with at least 95 % at or below it
            return Figure(Fraction(select(runs, rank - 1), scale), None, None, n, counts)
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
