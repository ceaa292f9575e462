"""Aggregates that resist differencing over time: only closed periods are published, and each is frozen.

An aggregate recomputed as data arrives can be differenced: download the payments table, wait for one more
payment, download again, subtract, and the newcomer's amount is out, whatever the k-threshold. So a period (a
local day, the ``day`` dimension of :data:`catalogue.privacy.AGGREGATED`) is published only once it is **closed**
(:data:`CLOSE_AFTER` after its end, time for late data to arrive), and the first time a closed period is published
its table (with small-cell and secondary suppression computed over that period alone) is **frozen**: stored and
served verbatim ever after. Data that arrives for a period after it was frozen is never published, and no table
spans periods, so two downloads at any two times differ only by whole new periods, each computed once.

Guarantee: every published cell is a k-anonymous (k = 10) aggregate of a closed period and never changes; a
payment posted now lands in an open period, which is not published, and by the time that period is published
there is no earlier release of it to subtract. (This is a release policy, not differential privacy: the
protection against combining *different* tables is the k-threshold and secondary suppression of
:mod:`catalogue.privacy`.)

    freezer = PeriodFreezer(engine)
    rows = await freezer.rows("payment-transactions-astana", AGGREGATED["PaymentTransaction"], entities)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue.privacy import LOCAL_TIME, AggregateSpec, CellKey, JsonObject, count_cells, table_rows
from catalogue.tables import frozen_periods

CLOSE_AFTER = timedelta(days=1)
"""A local day is published from 00:00 of the day after next: a full day for late payments to arrive."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def is_closed(period: str, now: datetime, close_after: timedelta = CLOSE_AFTER) -> bool:
    """Whether the local day ``period`` (``YYYY-MM-DD``) has been over for ``close_after`` at ``now``.

    >>> is_closed("2025-03-01", datetime(2025, 3, 2, 18, 59, tzinfo=UTC))  # 23:59 on 2 March in Astana
    False
    >>> is_closed("2025-03-01", datetime(2025, 3, 2, 19, 0, tzinfo=UTC))
    True
    >>> is_closed("unknown", datetime(2030, 1, 1, tzinfo=UTC))
    False
    """
    try:
        day = date.fromisoformat(period)
    except ValueError:
        return False  # records without a usable date belong to no period, and are never published
    end = datetime.combine(day + timedelta(days=1), time(), LOCAL_TIME)
    return now >= end + close_after


class PeriodFreezer:
    """Publishes aggregated live datasets by closed period, freezing each period at its first publication.

    Without an engine it still publishes closed periods only, but cannot freeze them (for tools and tests)."""

    def __init__(
        self,
        engine: AsyncEngine | None,
        *,
        clock: Callable[[], datetime] = utc_now,
        close_after: timedelta = CLOSE_AFTER,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.close_after = close_after

    async def rows(self, dataset: str, spec: AggregateSpec, entities: Iterable[JsonObject]) -> list[JsonObject]:
        """The published table of ``dataset``: the frozen rows of every closed period, oldest first."""
        axis = spec.dimensions.index("day")
        periods: dict[str, dict[CellKey, tuple[int, Decimal]]] = defaultdict(dict)
        for key, cell in count_cells(spec, entities).items():
            periods[key[axis]][key] = cell
        frozen = await self._load(dataset)
        now = self.clock()
        fresh = {
            period: table_rows(spec, cells)
            for period, cells in periods.items()
            if period not in frozen and is_closed(period, now, self.close_after)
        }
        if fresh:
            frozen = await self._freeze(dataset, fresh, now) if self.engine is not None else {**frozen, **fresh}
        return [row for period in sorted(frozen) for row in frozen[period]]

    async def _load(self, dataset: str) -> dict[str, list[JsonObject]]:
        if self.engine is None:
            return {}
        query = sa.select(frozen_periods.c.period, frozen_periods.c.rows).where(frozen_periods.c.dataset == dataset)
        async with self.engine.connect() as connection:
            return {period: list(rows) for period, rows in (await connection.execute(query)).all()}

    async def _freeze(
        self, dataset: str, fresh: dict[str, list[JsonObject]], now: datetime
    ) -> dict[str, list[JsonObject]]:
        assert self.engine is not None
        for period, rows in sorted(fresh.items()):
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(
                        frozen_periods.insert().values(dataset=dataset, period=period, rows=rows, frozen_at=now)
                    )
            except IntegrityError:
                pass  # another worker froze this period first: its rows are the published ones
        return await self._load(dataset)
