"""The public CityScore-KZ pages: ``/cityscore`` (the national ranking), ``/cityscore/<city>`` and
``/kpis/<code>``, in Kazakh, Russian and English, with charts drawn on the server.

The pages read the KPIValues the hub publishes through the catalogue's live source
(``request.app.state.catalogue.source``), so what they show is the open data anyone can download.

    app.include_router(cityscore.web.router())
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cityscore import i18n
from cityscore.board import Board
from cityscore.book import KpiBook
from cityscore.charts import ranking_chart, trend_chart
from cityscore.errors import UnknownKpi
from cityscore.score import CITYSCORE
from schemas import SchemaRegistry
from schemas.cities import CityRegistry

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
PERIODS = ("day", "week", "month")


def _locale(request: Request) -> str:
    """?lang= first, then the catalogue's cookie, then the browser's languages, then Kazakh."""
    asked = request.query_params.get("lang")
    if asked in i18n.LOCALES:
        return asked
    cookie = request.cookies.get("lang")
    if cookie in i18n.LOCALES:
        return cookie
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in i18n.LOCALES:
            return code
    return "kk"


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    locale = _locale(request)
    cities = CityRegistry.load()
    helpers = {
        "locale": locale,
        "t": lambda key: i18n.text(key, locale),
        "number": lambda value, digits=2: i18n.number(value, locale, digits),
        "day": lambda value: i18n.day(value, locale),
        "moment": lambda text: i18n.moment(datetime.fromisoformat(text), locale),
        "city_name": lambda code: cities.get(code).name[locale] if cities.is_known(code) else code,
        "book_version": KpiBook.load().version,
    }
    html = TEMPLATES.get_template(template).render(**helpers, **context)
    return HTMLResponse(html, headers={"Content-Language": locale, "Cache-Control": "max-age=30"})


async def _board(request: Request) -> Board:
    return await Board.load(request.app.state.catalogue.source, CityRegistry.load())


def router() -> APIRouter:
    pages = APIRouter(tags=["cityscore"])

    @pages.get("/cityscore", response_class=HTMLResponse, include_in_schema=False)
    async def ranking(request: Request) -> HTMLResponse:
        locale = _locale(request)
        board = await _board(request)
        cities = CityRegistry.load()
        history = board.history("day", last=30)
        lines: dict[str, list[float | None]] = {}
        for city in board.cities():
            by_start = {start: {p.city: p.score for p in places} for start, places in history}
            lines[cities.get(city).name[locale]] = [by_start[start].get(city) for start, _ in history]
        chart = ranking_chart(i18n.text("history", locale), lines, [start for start, _ in history], locale)
        return _page(
            request,
            "cityscore_ranking.html",
            rankings=[(kind, board.ranking(kind)) for kind in PERIODS],
            history_chart=chart,
            kpis=[(kpi.code, kpi.name[locale]) for kpi in KpiBook.load()],
        )

    @pages.get("/cityscore/{city}", response_class=HTMLResponse, include_in_schema=False)
    async def city_page(request: Request, city: str) -> HTMLResponse:
        cities = CityRegistry.load()
        if not cities.is_known(city):
            raise HTTPException(404, f"unknown city {city!r}")
        locale = _locale(request)
        board = await _board(request)
        book = KpiBook.load()
        today = board.latest(city, CITYSCORE, "day")
        rows = []
        for kpi in book:
            series = board.series(city, kpi.code, "day", last=30)
            unit = i18n.unit(kpi.unit, locale)
            title = kpi.name[locale] + (f", {unit}" if unit else "")
            points = [(date.fromisoformat(v["periodStart"]), v.get("value"), v.get("target")) for v in series]
            chart = trend_chart(title, points, locale, target_label=i18n.text("target", locale))
            rows.append(
                {
                    "code": kpi.code,
                    "name": kpi.name[locale],
                    "unit": unit,
                    "latest": board.latest(city, kpi.code, "day"),
                    "chart": chart,
                }
            )
        return _page(
            request,
            "cityscore_city.html",
            city=city,
            today=today,
            today_start=date.fromisoformat(today["periodStart"]) if today else None,
            rows=rows,
        )

    @pages.get("/kpis/{code}", response_class=HTMLResponse, include_in_schema=False)
    async def kpi_page(request: Request, code: str) -> HTMLResponse:
        try:
            kpi = KpiBook.load().get(code)
        except UnknownKpi as exc:
            raise HTTPException(404, str(exc)) from exc
        locale = _locale(request)
        board = await _board(request)
        cities = CityRegistry.load()
        registry = SchemaRegistry.load()
        shown = board.cities() or ["astana", "almaty", "shymkent"]
        rows = [
            {"city": c, "target": _float(kpi.target_for(c, days=1)), "latest": board.latest(c, code, "day")}
            for c in shown
        ]
        starts = sorted({date.fromisoformat(v["periodStart"]) for c in shown for v in board.series(c, code, "day")})[
            -30:
        ]
        figures = {c: {date.fromisoformat(v["periodStart"]): v for v in board.series(c, code, "day")} for c in shown}
        values = {c: {start: v.get("value") for start, v in found.items()} for c, found in figures.items()}
        lines = {cities.get(c).name[locale]: [values[c].get(s) for s in starts] for c in shown}
        unit = i18n.unit(kpi.unit, locale)
        title = kpi.name[locale] + (f", {unit}" if unit else "")
        aggregate = i18n.AGGREGATES[kpi.formula.aggregate][locale]
        return _page(
            request,
            "cityscore_kpi.html",
            kpi=kpi,
            reads=", ".join(_type_title(registry, name, locale) for name in kpi.formula.reads),
            aggregate=aggregate[:1].upper() + aggregate[1:],
            rows=rows,
            chart=ranking_chart(title, lines, starts, locale),
            table=[(s, [figures[c].get(s) for c in shown]) for s in reversed(starts)],
        )

    @pages.get("/kpis/{code}/{city}.csv", include_in_schema=False)
    async def kpi_csv(request: Request, code: str, city: str) -> Response:
        try:
            KpiBook.load().get(code)
        except UnknownKpi as exc:
            raise HTTPException(404, str(exc)) from exc
        body = _csv(await _board(request), code, city)
        disposition = f'attachment; filename="{code}-{city}.csv"'
        return Response(body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})

    return pages


def _csv(board: Board, code: str, city: str) -> str:
    """Every published value of one KPI in one city, each period and group, oldest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["period", "periodStart", "group", "value", "target", "score", "final", "revision"])
    for kind in PERIODS:
        for group in [None, *board.groups(city, code, kind)]:
            for v in board.series(city, code, kind, group, last=10_000):
                writer.writerow(
                    [
                        kind,
                        v["periodStart"],
                        group or "",
                        v.get("value"),
                        v.get("target"),
                        v.get("score"),
                        v.get("final"),
                        v.get("revision", ""),
                    ]
                )
    return buffer.getvalue()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


TYPE_TITLES = {
    "ServiceRequest": {"kk": "өтініштер", "ru": "обращения", "en": "service requests"},
    "PaymentTransaction": {"kk": "төлемдер", "ru": "платежи", "en": "payments"},
    "AirQualityObserved": {"kk": "ауа сапасы", "ru": "качество воздуха", "en": "air quality"},
    "TrafficFlowObserved": {"kk": "көлік ағыны", "ru": "транспортный поток", "en": "traffic flow"},
    "VehiclePosition": {"kk": "көлік орны", "ru": "положение транспорта", "en": "vehicle positions"},
    "MeterReading": {"kk": "есептегіштер", "ru": "показания счётчиков", "en": "meter readings"},
    "Incident": {"kk": "оқиғалар", "ru": "происшествия", "en": "incidents"},
    "Facility": {"kk": "нысандар", "ru": "объекты", "en": "facilities"},
    "Organization": {"kk": "ұйымдар", "ru": "организации", "en": "organisations"},
    "Device": {"kk": "құрылғылар", "ru": "устройства", "en": "devices"},
    "ServiceType": {"kk": "қызмет түрлері", "ru": "виды услуг", "en": "service types"},
}


def _type_title(registry: SchemaRegistry, name: str, locale: str) -> str:
    return TYPE_TITLES.get(name, {}).get(locale, registry.get(name).collection)
