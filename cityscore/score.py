"""Boston's CityScore arithmetic: a KPI's score against its target, and a city's composite.

    >>> from fractions import Fraction as F
    >>> score(F(9, 10), F(8, 10), "higher-is-better", 1.25)
    Fraction(9, 8)
    >>> score(F(60), F(900), "lower-is-better", 1.25)     # 15x better than target, capped
    Fraction(5, 4)
    >>> composite([(F(1), 1.0), (F(1, 2), 1.0), (None, 1.0)])
    Fraction(3, 4)

A score is None (never 0) when there is nothing to score: no value, or no target.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction

CITYSCORE = "cityscore"
"""The kpiCode under which a city's composite is published."""


@functools.lru_cache(maxsize=1024, typed=True)
def exact(number: float | str) -> Fraction:
    """The fraction a number of the book (a target, weight or cap) is written as: ``Fraction(str(number))``, so
    0.85 is 17/20, not the binary float nearest it. Cached (and typed, so ``True`` is never taken for ``1``): the
    engine asks for the same few numbers for every figure it writes."""
    return Fraction(str(number))


def score(value: Fraction | None, target: Fraction | None, direction: str, cap: float | None) -> Fraction | None:
    """value/target, or target/value when lower is better; 1 = on target; capped when the book says so."""
    if value is None or target is None or target <= 0:
        return None
    if direction == "higher-is-better":
        raw = value / target
    elif value <= 0:  # lower is better and nothing went wrong at all: as good as the cap allows
        return exact(cap) if cap is not None else None
    else:
        raw = target / value
    if cap is not None:
        raw = min(raw, exact(cap))
    return max(raw, Fraction(0))


def composite(scores: Sequence[tuple[Fraction | None, float]]) -> Fraction | None:
    """Weighted mean of the scores that exist (weights > 0); None when none does."""
    present = [(s, exact(w)) for s, w in scores if s is not None and w > 0]
    total = sum((w for _, w in present), Fraction(0))
    if not present or total == 0:
        return None
    return sum((s * w for s, w in present), Fraction(0)) / total


def rounded(value: Fraction | None, digits: int) -> float | None:
    """The published form of an exact figure."""
    return None if value is None else round(float(value), digits)
