"""Server-side SVG charts (pygal): no script, no CDN, a title and description inside the SVG for screen readers.

svg = trend_chart("Data latency", [(date(2026, 12, 3), 12.0, 900.0)], "en", target_label="Target")
assert svg.startswith("<svg")
"""

from __future__ import annotations

import re
import sys
from datetime import date
from html import escape

import pygal
from pygal.style import Style

from cityscore.i18n import day, number, text

# pygal appends a pre-PEP 451 finder to sys.meta_path (for its map plugins, unused here); every import that
# reaches it then raises an ImportWarning, which the test suite turns into an error. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"]

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#9aa5b1",
    colors=("#0b6e4f", "#c2410c", "#1d4ed8", "#7c3aed", "#b91c1c", "#0e7490"),
    font_family="system-ui, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)


def _config(chart: pygal.Graph, title: str, locale: str) -> None:
    chart.config.js = []  # pygal would otherwise load its tooltip script from a CDN
    chart.config.css = [*chart.config.css]
    chart.config.disable_xml_declaration = True
    chart.config.no_data_text = text("no_data", locale)
    chart.config.title = title
    chart.config.show_x_guides = False
    chart.config.height = 280
    chart.config.width = 720
    chart.config.legend_at_bottom = True
    chart.config.value_formatter = lambda v: number(v, locale)


def _accessible(svg: str, title: str, description: str) -> str:
    """Mark the SVG as an image with its title and a description that says what it shows; drop pygal's config
    script (it only feeds the tooltip script we do not load)."""
    svg = re.sub(r"<script\b.*?</script>", "", svg, flags=re.DOTALL)
    head, _, rest = svg.partition(">")
    label = escape(f"{title}. {description}", quote=True)
    return f'{head} role="img" aria-label="{label}">{rest}'


def trend_chart(
    title: str, points: list[tuple[date, float | None, float | None]], locale: str, *, target_label: str
) -> str:
    """A line of values with the target as a dashed line."""
    chart = pygal.Line(style=STYLE, x_label_rotation=0, show_minor_x_labels=False, dots_size=3)
    _config(chart, title, locale)
    chart.x_labels = [day(d, locale, short=True) for d, _, _ in points]
    chart.x_labels_major = chart.x_labels[:: max(1, len(points) // 7)]
    chart.add(title, [v for _, v, _ in points])
    if any(t is not None for _, _, t in points):
        chart.add(
            target_label, [t for _, _, t in points], stroke_style={"dasharray": "6,4", "width": 2}, show_dots=False
        )
    described = "; ".join(f"{day(d, locale)}: {number(v, locale)}" for d, v, _ in points[-7:])
    return _accessible(chart.render(is_unicode=True), title, described)


def ranking_chart(title: str, lines: dict[str, list[float | None]], labels: list[date], locale: str) -> str:
    """CityScore of each city over time."""
    chart = pygal.Line(style=STYLE, dots_size=3, show_minor_x_labels=False)
    _config(chart, title, locale)
    chart.x_labels = [day(d, locale, short=True) for d in labels]
    chart.x_labels_major = chart.x_labels[:: max(1, len(labels) // 7)]
    for name, values in lines.items():
        chart.add(name, values)
    described = "; ".join(f"{name}: {number(values[-1], locale)}" for name, values in lines.items() if values)
    return _accessible(chart.render(is_unicode=True), title, described)
