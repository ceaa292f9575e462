"""Medians and percentiles selected across the sorted runs of the days a period covers equal those of one sorted
list of all its values (the rule accumulate.py had before: n // 2, the mean of the two middle values for an even
count, the nearest rank for the 95th percentile)."""

from __future__ import annotations

from fractions import Fraction
from itertools import chain

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityscore.accumulate import Accumulator, Delta, Run, select

values = st.integers(-5, 5) | st.integers(-(2**40), 2**40)  # few distinct values (ties) and far-apart ones
runs = st.lists(st.lists(values, max_size=30).map(sorted), max_size=8)  # empty days included


@settings(max_examples=400, deadline=None)
@given(runs, st.data())
def test_select_is_the_rank_of_the_sorted_union(lists: list[list[int]], data: st.DataObject) -> None:
    merged = sorted(chain(*lists))
    if not merged:
        return
    rank = data.draw(st.integers(0, len(merged) - 1))
    assert select(lists, rank) == merged[rank]


def _median(values: list[int], scale: int) -> Fraction | None:
    ordered, n = sorted(values), len(values)
    if not n:
        return None
    middle = n // 2
    doubled = 2 * ordered[middle] if n % 2 else ordered[middle - 1] + ordered[middle]
    return Fraction(doubled, 2 * scale)


def _p95(values: list[int], scale: int) -> Fraction | None:
    ordered, n = sorted(values), len(values)
    return Fraction(ordered[(95 * n + 99) // 100 - 1], scale) if n else None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 150), min_size=1, max_size=5), st.sampled_from([1, 1000, 3_600_000]), st.data())
def test_a_period_of_runs_gives_the_median_and_p95_of_all_its_values(
    sizes: list[int], scale: int, data: st.DataObject
) -> None:
    """Each day is a run folded as the ledger does (a sorted batch added, then some of its values removed, few or
    many at once); the period's accumulator answers from the runs."""
    period = Accumulator("median", "p95")
    assert period.runs is not None
    kept: list[int] = []
    for size in sizes:
        day = data.draw(st.lists(values, min_size=size, max_size=size))
        removed = data.draw(st.lists(st.booleans(), min_size=size, max_size=size))
        run = Run()
        period.runs.append(run)
        delta = Delta([part for value in day for part in (value, True, None)], (), ordered=True)
        run.fold(delta)
        period.fold(delta)
        gone = [value for value, out in zip(day, removed, strict=True) if out]
        delta = Delta((), [part for value in gone for part in (value, True, None)])
        run.fold(delta)
        period.fold(delta)
        remaining = [value for value, out in zip(day, removed, strict=True) if not out]
        assert run.values == sorted(remaining)
        kept += remaining
    assert period.figure("median", scale, 0).value == _median(kept, scale)
    assert period.figure("p95", scale, 0).value == _p95(kept, scale)
    assert period.figure("median", scale, 0).entities == len(kept)


def test_removing_a_value_never_added_fails() -> None:
    run = Run()
    run.fold(Delta([3, True, None], ()))
    with pytest.raises(ValueError, match="never added"):
        run.fold(Delta((), [4, True, None]))
    with pytest.raises(ValueError, match="never added"):
        run.fold(Delta((), [3, True, None] * 100))
