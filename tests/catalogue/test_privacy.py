"""Small-cell suppression and the public view: unit level, plus a property over random tables."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.privacy import (
    AGGREGATED,
    ALL,
    K_ANONYMITY,
    aggregate_cells,
    aggregate_rows,
    count_cells,
    public_view,
)
from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import generated_payments


def _raw(cells: dict[tuple[str, ...], int]) -> dict[tuple[str, ...], tuple[int, Decimal]]:
    return {key: (count, Decimal(count * 100)) for key, count in cells.items()}


def test_cells_below_k_are_suppressed_and_large_ones_published() -> None:
    table = aggregate_cells(_raw({("a", "d1", "heat"): 50, ("a", "d1", "gas"): 9, ("a", "d1", "water"): 30}))
    assert table[("a", "d1", "heat")].suppressed is False
    assert table[("a", "d1", "gas")].suppressed is True


def test_a_lone_suppressed_cell_drags_the_smallest_neighbour_with_it() -> None:
    # margin 89 is published: 89 - 50 - 30 would reveal gas = 9 without secondary suppression
    table = aggregate_cells(_raw({("a", "d1", "heat"): 50, ("a", "d1", "gas"): 9, ("a", "d1", "water"): 30}))
    assert table[("a", "d1", "water")].suppressed is True
    assert table[("a", "d1", "heat")].suppressed is False
    assert table[("a", "d1", ALL)].count == 89
    assert table[("a", "d1", ALL)].suppressed is False


def test_a_small_line_total_is_suppressed() -> None:
    table = aggregate_cells(_raw({("a", "d1", "heat"): 4, ("a", "d1", "gas"): 3}))
    assert table[("a", "d1", ALL)].suppressed is True


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from("abcd"),
            st.sampled_from(["d1", "d2", "d3"]),
            st.sampled_from(["heat", "gas", "water", "fee"]),
        ),
        st.integers(min_value=1, max_value=40),
        min_size=1,
        max_size=40,
    )
)
def test_no_suppressed_cell_can_be_recovered_from_any_line(cells: dict[tuple[str, str, str], int]) -> None:
    table = aggregate_cells(_raw(cells))
    for key, cell in table.items():
        if not cell.suppressed:
            assert cell.count >= K_ANONYMITY, key
    inner = {key: cell for key, cell in table.items() if key[-1] != ALL}
    for axis in range(3):
        lines: dict[tuple[str, ...], list[bool]] = defaultdict(list)
        for key, cell in inner.items():
            lines[key[:axis] + key[axis + 1 :]].append(cell.suppressed)
        for line, hidden in lines.items():
            assert sum(hidden) != 1 or len(hidden) == 1, (axis, line)
    # a published line total with exactly one hidden cell would give that cell away
    for key, margin in table.items():
        if key[-1] == ALL and not margin.suppressed:
            hidden = [c for k, c in inner.items() if k[:-1] == key[:-1] and c.suppressed]
            assert len(hidden) != 1


def test_payments_aggregate_by_local_day(registry: SchemaRegistry) -> None:
    spec = AGGREGATED["PaymentTransaction"]
    entity = generated_payments(1)[0] | {"dateBooked": "2025-03-01T20:30:00+00:00"}
    (key,) = count_cells(spec, [entity])
    assert key[1] == "2025-03-02"  # 01:30 next day in Kazakhstan (UTC+5)
    rows = aggregate_rows(spec, generated_payments(600))
    assert {row["suppressed"] for row in rows} == {True, False}
    assert all(row["count"] is None or row["count"] >= K_ANONYMITY for row in rows)


def test_public_view_drops_personal_fields_and_coarsens_requests(registry: SchemaRegistry) -> None:
    version = registry.get("ServiceRequest")
    entity = {
        "id": "urn:ngsi-ld:ServiceRequest:astana:1",
        "type": "ServiceRequest",
        "city": "astana",
        "contactName": "Айгүл Серікқызы",
        "contactPhone": "+77011234567",
        "address": {"streetAddress": "Кенесары", "streetNr": "40", "district": "Есильский"},
        "location": {"type": "Point", "coordinates": [71.430612, 51.128207]},
    }
    view = public_view(version, entity)
    assert not {"contactName", "contactPhone"} & set(view)
    assert view["address"] == {"district": "Есильский"}
    assert view["location"]["coordinates"] == [71.431, 51.128]
