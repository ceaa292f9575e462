"""Time-series charts as accessible inline SVG, drawn on the server (no script, no inline style: a strict
``Content-Security-Policy: default-src 'self'`` page shows them).

Each chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` that says what is drawn and its range; every
point carries a ``<title>`` with its time and value, and the page keeps the same figures in its table.

    >>> from datetime import datetime, UTC
    >>> svg = line_chart([Series("PM2.5", [(datetime(2025, 1, 1, tzinfo=UTC), 12.0),
    ...                                     (datetime(2025, 1, 2, tzinfo=UTC), 30.5)])], "en", title="Air")
    >>> svg.startswith('<svg') and 'role="img"' in svg and "<desc" in svg
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from html import escape
from zoneinfo import ZoneInfo

from catalogue.formatting import DEFAULT_ZONE, local_date, local_time, number

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 50
PALETTE = ("series-0", "series-1", "series-2", "series-3")
Point = tuple[datetime, float]
Scale = Callable[[float], float]


@dataclass(frozen=True)
class Series:
    label: str
    points: list[Point]


def as_moment(value: datetime | date, zone: ZoneInfo = DEFAULT_ZONE) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time(12), tzinfo=zone)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 10 ** -len(f"{raw:.10f}".split(".")[1].lstrip("0"))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = (low // step) * step
    ticks = [first]
    while ticks[-1] < high - step * 1e-9 and len(ticks) < count + 4:  # the last tick is above the highest value
        ticks.append(ticks[-1] + step)
    return ticks


def _frame(series: list[Series], zero: bool) -> tuple[float, float, float, float]:
    points = [p for s in series for p in s.points]
    times = [p[0].timestamp() for p in points]
    values = [p[1] for p in points]
    low, high = min(values), max(values)
    if zero:
        low = min(0.0, low)
    if high == low:
        high, low = high + 1, low - (0 if zero else 1)
    return min(times), max(times), low, high


def _axes(
    low: float, high: float, start: float, end: float, *, locale: str, zone: ZoneInfo, dates: bool, times: bool = True
) -> list[str]:
    out = []
    ticks = _ticks(low, high)
    top, bottom = ticks[-1] if ticks[-1] > high else high, low

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - bottom) / ((top - bottom) or 1))

    for tick in ticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        label = escape(number(round(tick, 6), locale))
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{label}</text>')
    marks = ((0.0, "start"), (0.5, "middle"), (1.0, "end")) if end > start else ((0.5, "middle"),)
    for fraction, anchor in marks if times else ():
        moment = datetime.fromtimestamp(start + (end - start) * fraction, UTC)
        label = local_date(moment, locale, zone) if dates else local_time(moment, locale, zone)
        x = LEFT + (WIDTH - LEFT - RIGHT) * fraction
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(bottom):.1f}" y2="{y(bottom):.1f}"/>')
    return out


def _scale(start: float, end: float, low: float, high: float) -> tuple[Scale, Scale]:
    top = _ticks(low, high)[-1]
    top = top if top > high else high

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * ((t - start) / ((end - start) or 1) if end > start else 0.5)

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - low) / ((top - low) or 1))

    return x, y


def _open(title: str, desc: str, ident: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc"><title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>'
    )


def _describe(series: list[Series], locale: str, zone: ZoneInfo, dates: bool) -> str:
    parts = []
    for s in series:
        values = [v for _, v in s.points]
        first, last = min(t for t, _ in s.points), max(t for t, _ in s.points)
        when = (
            (local_date if dates else local_time)(first, locale, zone),
            (local_date if dates else local_time)(last, locale, zone),
        )
        parts.append(
            f"{s.label}: {number(min(values), locale)} – {number(max(values), locale)} ({when[0]} – {when[1]})"
        )
    return "; ".join(parts)


def line_chart(
    series: list[Series], locale: str, *, title: str, zone: ZoneInfo = DEFAULT_ZONE, ident: str = "chart"
) -> str:
    """Lines with a dot per observation, one colour per series, and a legend."""
    series = [s for s in series if s.points]
    if not series:
        return ""
    start, end, low, high = _frame(series, zero=True)
    x, y = _scale(start, end, low, high)
    body = [_open(title, _describe(series, locale, zone, dates=False), ident)]
    body += _axes(low, high, start, end, locale=locale, zone=zone, dates=False)
    for index, s in enumerate(series):
        css = PALETTE[index % len(PALETTE)]
        points = sorted(s.points)
        path = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in points)
        body.append(f'<polyline class="line {css}" points="{path}"/>')
        for t, v in points:
            label = f"{s.label}, {local_time(t, locale, zone)}: {number(v, locale)}"
            body.append(
                f'<circle class="dot {css}" cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="4">'
                f"<title>{escape(label)}</title></circle>"
            )
        lx = LEFT + 10 + index * 160
        body.append(f'<rect class="{css} swatch" x="{lx}" y="{HEIGHT - 22}" width="12" height="12"/>')
        body.append(f'<text class="legend" x="{lx + 18}" y="{HEIGHT - 12}">{escape(s.label)}</text>')
    body.append("</svg>")
    return "".join(body)


def bar_chart(
    bars: list[tuple[date, float]],
    label: str,
    locale: str,
    *,
    title: str,
    zone: ZoneInfo = DEFAULT_ZONE,
    ident: str = "chart",
) -> str:
    """One bar per day (aggregates such as payments per day)."""
    if not bars:
        return ""
    series = [Series(label, [(as_moment(d, zone), v) for d, v in bars])]
    start, end, low, high = _frame(series, zero=True)
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    top = _ticks(low, high)[-1]
    top = top if top > high else high
    body = [_open(title, _describe(series, locale, zone, dates=True), ident)]
    body += _axes(low, high, start, end, locale=locale, zone=zone, dates=True, times=False)
    for index, (day, value) in enumerate(sorted(bars)):
        height = (HEIGHT - TOP - BOTTOM) * (value - low) / ((top - low) or 1)
        bx = LEFT + index * slot + slot * 0.15
        text = f"{local_date(day, locale, zone)}: {number(value, locale)}"
        body.append(
            f'<rect class="bar series-0" x="{bx:.1f}" y="{HEIGHT - BOTTOM - height:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}"><title>{escape(text)}</title></rect>'
        )
        body.append(
            f'<text class="tick" x="{bx + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
            f"{escape(local_date(day, locale, zone))}</text>"
        )
    body.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>')
    body.append("</svg>")
    return "".join(body)
