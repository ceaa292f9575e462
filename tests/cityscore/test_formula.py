"""Formulas compiled to Python source give what the closures they replaced gave (tests/cityscore/formula_reference.py),
for random formulas over random entities: one formula at a time (``compile_formula``), and every formula of a book
at once, as the ledger evaluates a type (its contributions per entity, after updates and deletions)."""

from __future__ import annotations

from datetime import date, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityscore.book import Condition, Formula, Kpi, KpiBook
from cityscore.formula import Change, _decimal_units, compile_formula
from cityscore.ledger import Ledger
from schemas.cities import CityRegistry
from tests.cityscore import formula_reference as reference
from tests.cityscore.factories import BASE

CITIES = CityRegistry.load()
TYPES = ("PaymentTransaction", "AirQualityObserved")
FIELDS = ("a", "b", "t1", "t2")
NAMES = (*FIELDS, "$received", "$feed")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(-3, 40, allow_nan=False),
    st.sampled_from(
        [
            "2026-11-02T10:00:00+05:00",
            "2026-11-02T23:30:00.123456+06:00",
            "2026-11-01T19:00:00Z",
            "2026-11-02T10:00:00",  # naive: no instant
            "not a date",
            "ACSC",
            "12.50",
            "7",
            "2500.505",  # not a whole number of tiyn
            "NaN",
            "sNaN",
            "Infinity",
        ]
    ),
    st.just([1, "ACSC"]),
    st.just({"x": 1}),
)
scalars = st.sampled_from([0, 1, 7, 36, 7.0, 36.5, True, False, "ACSC", "7"])
"""Few values, so that a condition's value and an entity's often meet."""


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    op = draw(st.sampled_from(["exists", "eq", "ne", "in", "gt", "ge", "lt", "le"]))
    field = draw(st.sampled_from(("a", "b")) if draw(st.integers(0, 3)) else st.sampled_from(NAMES))
    if op == "exists":
        return Condition(field, op)
    if op == "in":
        return Condition(field, op, draw(st.lists(scalars, max_size=3)))
    if op in ("eq", "ne"):
        return Condition(field, op, draw(scalars))
    return Condition(field, op, draw(st.sampled_from([0, 7, 36.5])))  # the schema wants a number


@st.composite
def formulas(draw: st.DrawFn) -> Formula:
    moments = st.sampled_from(("t1", "t2", "$received", "$feed", "a"))
    time = tuple(
        draw(
            st.lists(
                st.sampled_from(("t1", "t2", "$received")) if draw(st.integers(0, 4)) else moments,
                min_size=1,
                max_size=2,
            )
        )
    )
    value = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.none(),
            st.builds(lambda names: {"received_minus": names}, st.lists(moments, min_size=1, max_size=2)),
            st.just({"received_minus": list(time)}),
            st.builds(lambda later, earlier: {"difference": [later, earlier]}, moments, moments),
            st.builds(lambda name: {"difference": [name, "t2"]}, st.just(time[0])),
            st.builds(lambda name: {"decimal": name}, st.sampled_from(NAMES)),
        )
    )
    parts = st.sampled_from((*NAMES, "hour:t1", "hour:t2", "hour:$received", f"hour:{time[0]}"))
    return Formula(
        reads=TYPES if draw(st.integers(0, 3)) else (draw(st.sampled_from(TYPES)),),
        time=time,
        aggregate=draw(st.sampled_from(["count", "sum", "ratio", "median", "distinct"])),
        where=tuple(draw(st.one_of(st.just([]), st.lists(conditions(), max_size=2)))),
        numerator_where=tuple(draw(st.lists(conditions(), max_size=2))),
        value=value,
        key=tuple(draw(st.one_of(st.just([]), st.lists(parts, max_size=2)))),
        group_by=draw(st.one_of(st.none(), st.sampled_from(NAMES))),
    )


dates = st.builds(
    lambda minutes, hours: (BASE + timedelta(minutes=minutes)).astimezone(timezone(timedelta(hours=hours))).isoformat(),
    st.integers(0, 3 * 24 * 60),
    st.sampled_from([0, 5, 6, -3]),
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "t1": st.one_of(dates, dates, dates, values),
        "t2": st.one_of(dates, dates, dates, values),
        "a": st.one_of(scalars, scalars, values, dates),
        "b": st.one_of(scalars, scalars, values),
    },
)


@st.composite
def changes(draw: st.DrawFn) -> Change:
    """A change: mostly a live entity of a type the formulas read; now and then a deletion or another type."""
    n = draw(st.integers(0, 5))
    type_name = draw(st.sampled_from(TYPES)) if draw(st.integers(0, 9)) else "Device"
    payload = draw(payloads) if draw(st.integers(0, 9)) else None
    received = BASE.timestamp() + draw(st.sampled_from([0, 0.25, 3600.5, 20 * 3600, 50 * 3600]))
    return Change(
        n, f"urn:ngsi-ld:{type_name}:astana:{n}", type_name, "payment-transactions", "astana", payload, received
    )


def _outcome(function: Any, change: Change) -> Any:
    """What evaluating gives: the result, or the kind of error it raised (both must raise alike)."""
    try:
        return function(change)
    except Exception as exc:  # the error's type is the outcome compared
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(formulas(), st.lists(changes(), min_size=1, max_size=5))
def test_a_compiled_formula_gives_what_the_closures_gave(formula: Formula, script: list[Change]) -> None:
    compiled, closures = compile_formula(formula), reference.compile_formula(formula)
    for change in script:
        assert _outcome(compiled, change) == _outcome(closures, change), compiled.__doc__


GRID = [None, True, False, 0, 7, 7.0, 36.5, "7", "ACSC", "12.50", "2500.505", "NaN", "sNaN", "Infinity", [7], {"x": 1}]
"""Every kind of value an entity's field may hold, for the exhaustive tests below."""


@pytest.mark.parametrize("op", ["exists", "eq", "ne", "in", "gt", "ge", "lt", "le"])
@pytest.mark.parametrize("where", [True, False], ids=["where", "numeratorWhere"])
def test_every_operator_on_every_kind_of_value(op: str, where: bool) -> None:
    expected_values = {"exists": [None], "in": [[7, "ACSC"], [], [True]]}.get(op) or [0, 7, 36.5, True, "7", "ACSC"]
    if op in ("gt", "ge", "lt", "le"):
        expected_values = [0, 7, 36.5]
    for expected in expected_values:
        condition = (Condition("a", op, expected),)
        formula = Formula(("PaymentTransaction",), ("t1",), "ratio", *((condition, ()) if where else ((), condition)))
        compiled, closures = compile_formula(formula), reference.compile_formula(formula)
        for actual in GRID:
            change = Change(
                1, "x", "PaymentTransaction", "p", "astana", {"t1": "2026-11-02T10:00:00+05:00", "a": actual}, 0
            )
            assert _outcome(compiled, change) == _outcome(closures, change), (op, expected, actual)


@pytest.mark.parametrize(
    "shape",
    [{"value": {"decimal": "a"}}, {"key": ("a", "hour:t1")}, {"key": ("$feed", "a")}, {"group_by": "a"}],
    ids=["decimal", "key", "feed-key", "group"],
)
def test_values_keys_and_groups_from_every_kind_of_value(shape: dict[str, Any]) -> None:
    formula = Formula(("PaymentTransaction",), ("t1",), "count", **shape)
    compiled, closures = compile_formula(formula), reference.compile_formula(formula)
    for actual in GRID:
        change = Change(
            1, "x", "PaymentTransaction", "p", "astana", {"t1": "2026-11-02T10:00:00+05:00", "a": actual}, 0
        )
        assert _outcome(compiled, change) == _outcome(closures, change), actual


def _kpi(index: int, formula: Formula) -> Kpi:
    return Kpi(f"k{index}", {}, {}, formula, "1", "higher-is-better", ("day", "month"), 1.0)


def _expected(book: KpiBook, change: Change) -> list[tuple[str, date, str | None, Any]]:
    zone = CITIES.get(change.city).zone
    found = []
    for kpi in book:
        result = reference.compile_formula(kpi.formula)(change)
        if result is not None:
            (moment, _), group, item = result
            found.append((kpi.code, moment.astimezone(zone).date(), group, item))
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(formulas(), min_size=1, max_size=5), st.lists(changes(), min_size=1, max_size=12))
def test_the_ledger_counts_each_entity_as_the_closures_would(formulas: list[Formula], script: list[Change]) -> None:
    """Formulas that differ only in their aggregate share one rule: half the drawn books repeat a formula."""
    book = KpiBook("test", [_kpi(n, f) for n, f in enumerate([*formulas, formulas[0]])])
    ledger = Ledger(book, CITIES)
    latest: dict[str, Change] = {}
    for change in script:
        if isinstance(_outcome(lambda c: _expected(book, c), change), type):  # an amount of "Infinity" raises
            continue
        ledger.apply(change)
        latest[change.id] = change
    for entity_id, change in latest.items():
        expected = _expected(book, change) if change.payload is not None else []
        assert ledger.contributions(entity_id) == expected


def _decimal_units_by_decimal(raw: Any) -> int | None:
    try:
        amount = Decimal(str(raw)) * 100
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


amounts = st.one_of(
    st.from_regex(r"\A-?[0-9]{0,22}\.[0-9]{0,3}\Z"),
    st.builds(lambda units: f"{units / 100:.2f}", st.integers(0, 10**12)),
    st.sampled_from([".50", "0.05", "00012.30", "1_000.00", " 12.30", "12.30 ", "\u0661\u0662.30", "1e3", "12.3"]),
    st.integers(-(10**6), 10**6),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
)


@settings(max_examples=500, deadline=None)
@given(amounts)
def test_amounts_read_as_plain_digits_give_what_a_decimal_gives(raw: Any) -> None:
    assert _decimal_units(raw) == _decimal_units_by_decimal(raw)
