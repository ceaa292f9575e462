"""``qala kpi``: the KPI book and the figures computed from the hub's change feed.

    qala kpi list
    qala kpi show payments.count
    qala kpi compute --from 2026-12-01 --to 2026-12-04 --city astana   # backfill, write, print
    qala kpi explain data.latency-p95 --city astana --period 2026-12-04

``compute`` and ``explain`` read the hub's database (``QALA_DATABASE_URL`` or ``--database-url``); ``compute``
writes KPIValue entities through the store exactly as the hub's own engine does.
"""

from __future__ import annotations

import shutil
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cityscore.book import Kpi, KpiBook
from cityscore.engine import Engine
from cityscore.errors import CityScoreError
from cityscore.periods import PERIODS, label, parse_period, period_days, window
from cityscore.score import CITYSCORE, rounded, score
from gateway.cli import DatabaseOption, run
from gateway.kpi_feed import hub_engine
from gateway.services import Services
from qala.cli import CliError
from schemas import SchemaRegistry
from schemas.cities import CityRegistry
from schemas.errors import UnknownCity

app = typer.Typer(help="CityScore-KZ: the KPI book, computing and explaining figures.", no_args_is_help=True)
# Piped or captured output gets wide tables (rich would assume 80 columns): a KPI code or an id stays whole.
out = Console(highlight=False, soft_wrap=True, width=max(shutil.get_terminal_size((160, 24)).columns, 100))
LANGS = ("kk", "ru", "en")


def _book() -> KpiBook:
    try:
        return KpiBook.load()
    except CityScoreError as exc:
        raise CliError(str(exc)) from exc


def _kpi(code: str) -> Kpi:
    try:
        return _book().get(code)
    except CityScoreError as exc:
        raise CliError(str(exc)) from exc


def _city(code: str | None) -> str | None:
    if code is None:
        return None
    try:
        return CityRegistry.load().get(code).code
    except UnknownCity as exc:
        raise CliError(str(exc)) from exc


def _lang(lang: str) -> str:
    if lang not in LANGS:
        raise CliError(f"--lang must be one of {', '.join(LANGS)}, not {lang!r}")
    return lang


@app.command("list")
def list_kpis(lang: Annotated[str, typer.Option(help="kk, ru or en.")] = "en") -> None:
    """Every KPI of the book: code, name, unit, direction, default target, cadence, weight."""
    lang = _lang(lang)
    book = _book()
    table = Table(title=f"KPI book {book.version}")
    table.add_column("code", no_wrap=True)
    for column in ("name", "unit", "direction", "target", "cadence", "weight"):
        table.add_column(column)
    for kpi in book:
        target = (
            ""
            if kpi.target is None
            else f"{kpi.target:g}" + (f" / {kpi.target_per_days} d" if kpi.target_per_days else "")
        )
        table.add_row(
            kpi.code, kpi.name[lang], kpi.unit, kpi.direction, target, ", ".join(kpi.cadence), f"{kpi.weight:g}"
        )
    out.print(table)


@app.command()
def show(code: str, lang: Annotated[str, typer.Option(help="kk, ru or en.")] = "en") -> None:
    """One KPI: its description, formula and each city's target."""
    lang = _lang(lang)
    kpi = _kpi(code)
    formula = kpi.formula
    out.print(f"[bold]{kpi.code}[/bold]  {kpi.name[lang]}")
    out.print(kpi.description[lang])
    out.print(f"reads       {', '.join(formula.reads)}")
    out.print(f"period by   first of {', '.join(formula.time)}, in the city's time zone")
    for condition in formula.where:
        out.print(f"where       {condition.field} {condition.op} {'' if condition.value is None else condition.value}")
    for condition in formula.numerator_where:
        out.print(f"numerator   {condition.field} {condition.op} {condition.value}")
    if formula.value is not None:
        out.print(f"value       {formula.value} / {formula.scale}")
    if formula.key:
        out.print(f"key         {', '.join(formula.key)}")
    out.print(f"aggregate   {formula.aggregate}" + (f", by {formula.group_by}" if formula.group_by else ""))
    out.print(f"unit        {kpi.unit}; {kpi.direction}; score cap {kpi.score_cap}; cadence {', '.join(kpi.cadence)}")
    table = Table("city", *PERIODS, "weight", title="targets")
    for city in CityRegistry.load():
        targets = [kpi.target_for(city.code, days=d) for d in (1, 7, 30)]
        table.add_row(
            city.code, *(f"{float(t):g}" if t is not None else "-" for t in targets), f"{kpi.weight_for(city.code):g}"
        )
    out.print(table)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from exc


@app.command()
def compute(
    start: Annotated[str, typer.Option("--from", help="First period start to print (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last period start to print (YYYY-MM-DD).")],
    city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
    database_url: str | None = DatabaseOption,
) -> None:
    """Read the whole change feed (backfill), write every changed figure, and print those in the range."""
    first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
    if first > last:
        raise CliError("--from is after --to")
    wanted = _city(city)

    async def work(services: Services) -> tuple[Engine, int]:
        engine = hub_engine(services.engine, SchemaRegistry.load(), _book())
        written = await engine.tick()
        return engine, written

    engine, written = run(database_url, work)
    table = Table("city", "period", "start", "kpi", "group", "value", "target", "score", "rev")
    shown = 0
    for (code, key_city, kind, key_start, group), entity in sorted(
        engine.published.items(), key=lambda item: (item[0][1], item[0][2], item[0][3], item[0][0], item[0][4] or "")
    ):
        if (wanted and key_city != wanted) or not first <= key_start <= last or group is not None:
            continue
        shown += 1
        table.add_row(
            key_city,
            kind,
            label(kind, key_start),
            code,
            group or "",
            _num(entity.get("value")),
            _num(entity.get("target")),
            _num(entity.get("score")),
            str(entity.get("revision", "")) + ("" if entity.get("final") else " (open)"),
        )
    out.print(table)
    out.print(f"{written} KPIValue entities written; change feed read up to {engine.position}; {shown} figures shown")


def _num(value: Any) -> str:
    return "" if value is None else f"{value:g}"


@app.command()
def explain(
    code: str,
    *,
    city: Annotated[str, typer.Option(help="City code.")],
    period: Annotated[str, typer.Option(help="2026-12-04 (day), 2026-W49 (week) or 2026-12 (month).")],
    group: Annotated[str | None, typer.Option(help="A group key (e.g. a feed) instead of the whole city.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entities listed.")] = 50,
    database_url: str | None = DatabaseOption,
) -> None:
    """What went into one figure: the formula, the window, the published value and every entity counted."""
    kpi = _kpi(code) if code != CITYSCORE else None
    city_code = _city(city)
    assert city_code is not None
    try:
        kind, start = parse_period(period)
    except CityScoreError as exc:
        raise CliError(str(exc)) from exc
    if kpi is not None and kind not in kpi.cadence:
        raise CliError(f"{code} is computed per {', '.join(kpi.cadence)}, not per {kind}")

    async def work(services: Services) -> Engine:
        engine = hub_engine(services.engine, SchemaRegistry.load(), _book())
        await engine.catch_up()  # read only: nothing is written
        return engine

    engine = run(database_url, work)
    zone = CityRegistry.load().get(city_code).zone
    begin, finish = window(kind, start, zone)
    key = (code, city_code, kind, start, group)
    out.print(
        f"[bold]{code}[/bold]  {city_code}  {kind} {label(kind, start)}  [{begin.isoformat()} .. {finish.isoformat()})"
    )
    published = engine.published.get(key)
    if kpi is None:
        _explain_cityscore(engine, city_code, kind, start, published)
        return
    out.print(kpi.description["en"])
    figure = engine.ledger.figure(key)
    target = kpi.target_for(city_code, days=period_days(kind, start))
    value = figure.value if figure.denominator != 0 else None
    computed = score(value, target, kpi.direction, kpi.score_cap)
    out.print(
        f"value {_num(rounded(value, 6))} {kpi.unit}  target {_num(rounded(target, 6))}  ({kpi.direction})"
        f"  score {_num(rounded(computed, 4))}" + (f"  cap {kpi.score_cap:g}" if kpi.score_cap else "")
    )
    if figure.numerator is not None:
        out.print(f"numerator {figure.numerator}  denominator {figure.denominator}")
    out.print(f"counts {figure.counts}; change feed read up to {engine.position}")
    if published is None:
        out.print("not published yet")
    else:
        out.print(
            f"published {published['id']}  value {_num(published.get('value'))}  final {published.get('final')}"
            f"  revision {published.get('revision', '-')}  calculated {published.get('dateCalculated')}"
        )
        for old in published.get("revisions", []):
            out.print(
                f"  earlier: revision {old['revision']} value {_num(old.get('value'))} at {old['dateCalculated']}"
            )
    members = engine.ledger.members(key)
    out.print(f"{len(members)} entities counted (id, local day, group, value in {kpi.unit}, numerator, key):")
    for entity_id in members[:limit]:
        for got_code, day, got_group, (item_value, hit, item_key) in engine.ledger.contributions(entity_id):
            if got_code == code:
                shown = "-" if item_value is None else f"{item_value / kpi.formula.scale:g}"
                numerator = "yes" if hit else "no"
                out.print(
                    f"  {entity_id}  {day.isoformat()}  {got_group or '-'}  {shown}  {numerator}  {item_key or '-'}"
                )
    if len(members) > limit:
        out.print(f"... and {len(members) - limit} more (--limit)")


def _explain_cityscore(engine: Engine, city: str, kind: str, start: date, published: dict[str, Any] | None) -> None:
    table = Table("kpi", "weight", "score")
    for kpi in engine.book:
        if kind in kpi.cadence:
            table.add_row(
                kpi.code, f"{kpi.weight_for(city):g}", _num(rounded(engine.kpi_score(kpi, city, kind, start), 4))
            )
    out.print(table)
    if published is not None:
        out.print(f"published CityScore {_num(published.get('value'))}  final {published.get('final')}")
