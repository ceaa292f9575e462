"""Incremental == from scratch: whatever order changes come in (late ones, updates, deletions), the ledger's
figures equal a recomputation from the latest state of every entity."""

from __future__ import annotations

import gc
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cityscore.book import KpiBook
from cityscore.formula import Change
from cityscore.ledger import Ledger, recompute
from cityscore.memory import MemoryHub
from schemas.cities import CityRegistry
from tests.cityscore.factories import BASE, air, case, payment, vehicle

BOOK = KpiBook.load()
CITIES = CityRegistry.load()
DAYS = 9 * 24 * 60  # events fall over nine days (two weeks, two months when the base is late in a month)

entities = st.one_of(
    st.builds(
        lambda n, m, a, s, c: payment(f"p{n}", m, a, s, c),
        st.integers(0, 6),
        st.integers(0, DAYS),
        st.sampled_from(["10.00", "2500.50", "7"]),
        st.sampled_from(["ACSC", "RJCT"]),
        st.sampled_from(["astana", "almaty"]),
    ),
    st.builds(
        lambda n, m, after, fcr: case(f"c{n}", m, closed_after=after, fcr=fcr),
        st.integers(0, 6),
        st.integers(0, DAYS),
        st.one_of(st.none(), st.integers(1, 5000)),
        st.one_of(st.none(), st.booleans()),
    ),
    st.builds(
        lambda n, station, m, pm: air(f"a{n}", station, m, pm),
        st.integers(0, 6),
        st.sampled_from(["s1", "s2"]),
        st.integers(0, DAYS),
        st.sampled_from([10.0, 36.0, 80.0]),
    ),
    st.builds(
        lambda n, route, m: vehicle(f"v{n}", route, m),
        st.integers(0, 6),
        st.sampled_from(["1", "12", "40"]),
        st.integers(0, DAYS),
    ),
)
events = st.lists(
    st.tuples(st.one_of(entities, st.integers(0, 100)), st.integers(0, DAYS * 60)),  # an int: delete something
    min_size=1,
    max_size=60,
)


def _play(hub: MemoryHub, ledger: Ledger, script: list[tuple[Any, int]]) -> None:
    seen = 0
    for item, delay in script:
        received = BASE.timestamp() + delay
        if isinstance(item, int):
            live = hub.live()
            if not live:
                continue
            hub.delete(live[item % len(live)]["id"], received_at=received)
        else:
            hub.put(item, received_at=received)
        for change in hub.final_states():
            if change.seq > seen:
                ledger.apply(change)
        seen = max(c.seq for c in hub.final_states())


def _nonempty(figures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: figure for key, figure in figures.items() if figure.entities}


@settings(max_examples=150, deadline=None)
@given(events)
def test_incremental_equals_recomputation_from_scratch(script: list[tuple[Any, int]]) -> None:
    hub = MemoryHub()
    ledger = Ledger(BOOK, CITIES)
    _play(hub, ledger, script)
    incremental = _nonempty({key: ledger.figure(key) for key in ledger.all_keys()})
    scratch = _nonempty(recompute(BOOK, CITIES, [c for c in hub.final_states() if c.payload is not None]))
    assert incremental == scratch


def test_figures_by_hand() -> None:
    hub = MemoryHub()
    ledger = Ledger(BOOK, CITIES)
    t0 = BASE.timestamp()
    script = [
        (payment("p1", 60, "100.00"), 70 * 60),  # received 10 minutes after it was booked
        (payment("p2", 120, "250.50"), 121 * 60),
        (payment("p3", 130, "9.99", status="RJCT"), 131 * 60),  # rejected: not counted
        (case("c1", 60, closed_after=120, fcr=True), 3 * 3600),
        (case("c22", 90, closed_after=None, fcr=False), 3 * 3600),
    ]
    for entity, delay in script:
        ledger.apply(hub.put(entity, received_at=t0 + delay))
    day = BASE.date()
    assert ledger.figure(("payments.count", "astana", "day", day, None)).value == 2
    assert ledger.figure(("payments.amount", "astana", "day", day, None)).value == Fraction("350.50")
    fcr = ledger.figure(("contact-centre.first-contact-resolution", "astana", "day", day, None))
    assert (fcr.numerator, fcr.denominator) == (1, 2)
    assert ledger.figure(("service-requests.resolution-hours", "astana", "month", day.replace(day=1), None)).value == 2
    latency = ledger.figure(("data.latency-median", "astana", "day", day, "payment-transactions"))
    assert latency.value == 60  # 600 s, 60 s and 60 s: the median is 60 s
    ledger.apply(hub.delete("urn:ngsi-ld:PaymentTransaction:astana:p2", received_at=t0 + 4 * 3600))
    assert ledger.figure(("payments.count", "astana", "day", day, None)).value == 1


def test_an_update_moves_an_entity_between_periods() -> None:
    hub = MemoryHub()
    ledger = Ledger(BOOK, CITIES)
    ledger.apply(hub.put(payment("p1", 60), received_at=BASE.timestamp()))
    ledger.apply(hub.put(payment("p1", 60 + 24 * 60), received_at=BASE.timestamp()))  # corrected to the next day
    first, second = BASE.date(), BASE.date().replace(day=BASE.day + 1)
    assert ledger.figure(("payments.count", "astana", "day", first, None)).entities == 0
    assert ledger.figure(("payments.count", "astana", "day", second, None)).value == 1


def test_changes_of_other_types_and_unknown_cities_count_for_nothing() -> None:
    ledger = Ledger(BOOK, CITIES)
    entity = payment("p1", 60, city="gotham")
    ledger.apply(Change(1, entity["id"], "PaymentTransaction", "payment-transactions", "gotham", entity, 0.0))
    assert ledger.all_keys() == []


def test_what_the_ledger_keeps_per_entity_is_nothing_the_garbage_collector_walks() -> None:
    """A backfill keeps every stored entity's contributions; if they were objects the collector tracks, every full
    collection would walk all of them and a million-entity backfill would slow down as it grows."""
    ledger = Ledger(BOOK, CITIES)

    def apply(first: int, count: int) -> None:
        for n in range(first, first + count):
            entity = payment(f"p{n}", n % (3 * 24 * 60))  # three days of payments
            ledger.apply(Change(n, entity["id"], entity["type"], "payment-transactions", "astana", entity, 1.8e9))

    apply(0, 500)
    ledger.take_dirty()  # the buckets, accumulators and figures of those three days now exist
    gc.collect()
    before = len(gc.get_objects())
    apply(500, 5000)
    ledger.take_dirty()
    gc.collect()
    assert len(gc.get_objects()) - before < 500  # 5,000 more entities, not one tracked object each
