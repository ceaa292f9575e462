"""What a live dataset's page shows beside its metadata: a readable preview, a map and a chart.

One read of up to :data:`SAMPLE` rows feeds all three, so a page costs one pass over the source whatever it
shows. The preview keeps the first :data:`PREVIEW_ROWS`; the map takes every point; the chart the series the
vocabulary names for the type (payments: the published daily totals, never a suppressed cell).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from catalogue.charts import Series, as_moment, bar_chart, line_chart
from catalogue.formatting import parse_moment, zone_of
from catalogue.i18n import translate
from catalogue.live import LiveRows
from catalogue.maps import point_map, points_of
from catalogue.readable import Preview, lookup, preview
from catalogue.vocabulary import VOCABULARY, ChartSpec

JsonObject = dict[str, Any]
SAMPLE = 1000
PREVIEW_ROWS = 10


@dataclass
class DatasetView:
    preview: Preview
    map_svg: str = ""
    charts: list[str] = field(default_factory=list)
    """One chart, or one per split value (a meter type, an indicator): values in different units never share
    an axis."""
    points: int = 0


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _series(spec: ChartSpec, type_name: str, rows: list[JsonObject], locale: str) -> list[Series]:
    """One series per measure, split by the spec's ``split`` column (meter type, indicator) when given."""
    grouped: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for row in rows:
        moment = parse_moment(lookup(row, spec.time))
        if moment is None:
            continue
        for measure in spec.series:
            value = _as_float(lookup(row, measure))
            if value is None:
                continue
            label = VOCABULARY.field(measure, locale)
            if spec.split:
                part = lookup(row, spec.split)
                shown = VOCABULARY.value(type_name, spec.split, part, locale) if isinstance(part, str) else None
                name = part.get(locale) or next(iter(part.values()), "") if isinstance(part, dict) else shown
                unit = row.get("unit")
                label = f"{name or part}{', ' + VOCABULARY.unit(unit, locale) if isinstance(unit, str) else ''}"
            grouped[label].append((as_moment(moment), value))
    return [Series(label, sorted(points)) for label, points in grouped.items()][:4]


def _daily_totals(rows: list[JsonObject]) -> list[tuple[date, float]]:
    """Published per-district daily totals (``serviceCategory == "all"``), summed per day."""
    days: dict[date, float] = defaultdict(float)
    for row in rows:
        if row.get("suppressed") or row.get("serviceCategory") != "all":
            continue
        moment = parse_moment(row.get("day"))
        amount = _as_float(row.get("amount"))
        if isinstance(moment, date) and amount is not None:
            days[moment] += amount
    return sorted(days.items())


async def build(live: LiveRows, type_name: str, title: str, locale: str) -> DatasetView:
    """The preview, map and chart of one live dataset, in ``locale``."""
    rows = [row async for row in live.rows(limit=SAMPLE)]
    zone = zone_of(live.city)
    view = DatasetView(preview(type_name, rows[:PREVIEW_ROWS], locale, zone))
    hidden = [row for row in rows if row.get("suppressed")]
    if hidden:  # say how much of the whole table is withheld, not only of the rows on the page
        view.preview.hidden_rows = len(hidden)
        view.preview.hidden = sum(1 for row in hidden for key in ("count", "amount") if key in row)
    if live.geometry:
        points = points_of(rows)
        view.points = len(points)
        description = f"{translate('map_points', locale)}: {len(points)}"
        view.map_svg = point_map(points, title=title, description=description, km=translate("km", locale))
    spec = VOCABULARY.chart(type_name)
    if spec is not None and spec.kind == "bars":
        label = translate("payments_by_day", locale)
        view.charts = [bar_chart(_daily_totals(rows), label, locale, title=label, zone=zone)]
    elif spec is not None:
        series = _series(spec, type_name, rows, locale)
        groups = [[one] for one in series] if spec.split else [series]
        view.charts = [
            line_chart(
                group,
                locale,
                title=f"{title}: {group[0].label}" if spec.split else title,
                zone=zone,
                ident=f"chart-{n}",
            )
            for n, group in enumerate(groups)
        ]
    view.charts = [svg for svg in view.charts if svg]
    return view
