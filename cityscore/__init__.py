"""CityScore-KZ: KPIs computed from the hub's change feed, scored against targets, ranked across cities.

The KPI book (``kpis/book.yaml``) says what each indicator reads and how it is computed; :class:`Engine` keeps
per-period accumulators up to date from the change feed and writes KPIValue entities through the hub's store;
:mod:`cityscore.score` turns values into Boston-style scores and a national ranking.

    book = KpiBook.load()
    engine = Engine(book, CityRegistry.load(), feed, sink)   # feed and sink: the hub's narrow interface
    await engine.tick()
"""

from cityscore.book import Kpi, KpiBook
from cityscore.engine import Engine
from cityscore.errors import BookError, CityScoreError, UnknownKpi

__all__ = ["BookError", "CityScoreError", "Engine", "Kpi", "KpiBook", "UnknownKpi"]
