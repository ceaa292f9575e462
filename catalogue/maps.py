"""Where the data is: server-drawn SVG maps that need no tile server (the page works on a closed network).

The frame fits the dataset's points (at least about 10 km across, in an equirectangular projection corrected
for latitude), with a scale bar; an inset draws Kazakhstan's outline (Natural Earth, public domain, bundled in
``catalogue/data/kazakhstan.geojson``) with the city marked, so a reader sees both the streets' spread and
where the city is. Every point has a ``<title>``; the map is ``role="img"`` with a description.

    >>> svg = point_map([MapPoint(71.43, 51.13, "Пост №3")], title="Ауа сапасы", description="1 бекет")
    >>> svg.count("<circle") >= 2 and "Пост №3" in svg
    True
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from typing import Any

WIDTH, HEIGHT = 720, 420
MARGIN = 24
INSET = (WIDTH - 170, 10, 160, 90)  # x, y, width, height
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class MapPoint:
    lon: float
    lat: float
    label: str


def points_of(rows: list[dict[str, Any]], label: str = "name") -> list[MapPoint]:
    """The GeoJSON points in ``location`` (other geometries contribute their first position)."""
    out = []
    for row in rows:
        geometry = row.get("location")
        if not isinstance(geometry, dict):
            continue
        position: Any = geometry.get("coordinates")
        while isinstance(position, list) and position and isinstance(position[0], list):
            position = position[0]
        if isinstance(position, list) and len(position) >= 2:
            name = row.get(label)
            text = name if isinstance(name, str) else (next(iter(name.values()), "") if isinstance(name, dict) else "")
            out.append(MapPoint(float(position[0]), float(position[1]), text))
    return out


@functools.cache
def _outline() -> list[list[tuple[float, float]]]:
    document = json.loads(files("catalogue").joinpath("data", "kazakhstan.geojson").read_text(encoding="utf-8"))
    return [[(x, y) for x, y in ring] for polygon in document["geometry"]["coordinates"] for ring in polygon]


def _inset(lon: float, lat: float) -> str:
    x0, y0, w, h = INSET
    rings = _outline()
    xs = [x for r in rings for x, _ in r]
    ys = [y for r in rings for _, y in r]
    west, east, south, north = min(xs), max(xs), min(ys), max(ys)
    squeeze = math.cos(math.radians((south + north) / 2))
    scale = min(w / ((east - west) * squeeze), h / (north - south))

    def project(x: float, y: float) -> str:
        return f"{x0 + (x - west) * squeeze * scale:.1f},{y0 + (north - y) * scale:.1f}"

    paths = "".join(f'<polygon class="country" points="{" ".join(project(x, y) for x, y in ring)}"/>' for ring in rings)
    marker = project(lon, lat).split(",")
    return (
        f'<g class="inset"><rect class="inset-frame" x="{x0 - 4}" y="{y0 - 4}" width="{w + 8}" height="{h + 8}"/>'
        f'{paths}<circle class="city-marker" cx="{marker[0]}" cy="{marker[1]}" r="4"/></g>'
    )


def point_map(points: list[MapPoint], *, title: str, description: str, km: str = "km", ident: str = "map") -> str:
    """An SVG map of ``points``; empty when there are none."""
    if not points:
        return ""
    lons = [p.lon for p in points]
    lats = [p.lat for p in points]
    mid_lat = (min(lats) + max(lats)) / 2
    squeeze = math.cos(math.radians(mid_lat))
    span = max((max(lons) - min(lons)) * squeeze, max(lats) - min(lats), 0.09) * 1.15
    centre_x = (min(lons) + max(lons)) / 2 * squeeze
    centre_y = (min(lats) + max(lats)) / 2
    scale = min(WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN) / span

    def project(p: MapPoint) -> tuple[float, float]:
        return (WIDTH / 2 + (p.lon * squeeze - centre_x) * scale, HEIGHT / 2 - (p.lat - centre_y) * scale)

    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc"><title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
        f'<rect class="map-ground" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>',
    ]
    step = 10 ** math.floor(math.log10(span / 2))
    for k in range(-12, 13):  # graticule every round fraction of a degree
        gx = WIDTH / 2 + (round(centre_x / squeeze / step) * step + k * step) * squeeze * scale - centre_x * scale
        gy = HEIGHT / 2 - (round(centre_y / step) * step + k * step - centre_y) * scale
        body.append(f'<line class="graticule" x1="{gx:.1f}" x2="{gx:.1f}" y1="0" y2="{HEIGHT}"/>')
        body.append(f'<line class="graticule" x1="0" x2="{WIDTH}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
    for point in points:
        x, y = project(point)
        label = point.label or f"{point.lat:.4f}, {point.lon:.4f}"
        title_element = f'<title translate="no">{escape(label)}</title>'
        body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="6">{title_element}</circle>')
    kilometres = max(1, round(span * KM_PER_DEGREE / 4))
    bar = kilometres / KM_PER_DEGREE * scale
    body.append(
        f'<line class="scale-bar" x1="{MARGIN}" x2="{MARGIN + bar:.1f}" y1="{HEIGHT - MARGIN}" y2="{HEIGHT - MARGIN}"/>'
        f'<text class="tick" x="{MARGIN}" y="{HEIGHT - MARGIN - 6}">{kilometres} {escape(km)}</text>'
    )
    body.append(_inset(sum(lons) / len(lons), sum(lats) / len(lats)))
    body.append("</svg>")
    return "".join(body)
