"""The CityScore pages over HTTP: ranking, city and KPI pages in three languages, CSV, open data."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")
ALLOWED = {"CityScore", "Qala", "CSV", "KZT", "ACSC", "GTFS", "Realtime"}  # names and codes, not English


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style|svg|code)\b.*?</\1>", " ", html, flags=re.DOTALL)
    html = re.sub(r'<a [^>]*lang="en"[^>]*>.*?</a>', " ", html, flags=re.DOTALL)  # the language switcher
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("locale", ["kk", "ru", "en"])
@pytest.mark.parametrize("path", ["/cityscore", "/cityscore/almaty", "/kpis/payments.count", "/kpis/data.latency-p95"])
def test_pages_in_every_language(site: str, path: str, locale: str) -> None:
    response = httpx.get(f"{site}{path}?lang={locale}")
    assert response.status_code == 200
    assert f'<html lang="{locale}">' in response.text
    assert response.headers["content-language"] == locale
    assert "<svg" in response.text
    assert "cdn" not in response.text.lower()
    if locale != "en":
        english = set(LATIN_WORD.findall(_visible_text(response.text))) - ALLOWED
        assert not english, english


def test_ranking_orders_cities_by_score(site: str) -> None:
    page = httpx.get(f"{site}/cityscore?lang=en").text
    day = page.split('id="ranking-day"')[1].split("</table>")[0]
    order = re.findall(r'href="/cityscore/([a-z]+)', day)
    scores = [float(s) for s in re.findall(r'class="num">([0-9.]+)</td>', day)]
    assert sorted(order) == ["almaty", "astana", "shymkent"]
    assert scores == sorted(scores, reverse=True)


def test_numbers_and_dates_in_the_readers_locale(site: str) -> None:
    ru = httpx.get(f"{site}/kpis/payments.amount?lang=ru").text
    en = httpx.get(f"{site}/kpis/payments.amount?lang=en").text
    assert re.search(r"\d\xa0\d{3}(,\d+)?<", ru)  # 1 234,5 in Russian
    assert re.search(r"\d,\d{3}(\.\d+)?<", en)  # 1,234.5 in English
    assert not re.search(r"\d,\d{3}(\.\d+)?<", ru)
    assert re.search(
        r"\d{1,2} (января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря) \d{4}", ru
    )


def test_a_revised_day_is_marked_with_its_earlier_value(site: str) -> None:
    page = httpx.get(f"{site}/kpis/payments.count?lang=en").text
    assert page.count(">revised</span>") == 1
    assert re.search(r'title="Revision 0: \d+; "', page)
    rows = list(csv.DictReader(io.StringIO(httpx.get(f"{site}/kpis/payments.count/astana.csv").text)))
    assert {row["revision"] for row in rows if row["period"] == "day"} >= {"0", "1"}


def test_csv_download_and_unknowns(site: str) -> None:
    response = httpx.get(f"{site}/kpis/payments.count/astana.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["period"] for row in rows} == {"day", "week", "month"}
    assert httpx.get(f"{site}/kpis/nope?lang=en").status_code == 404
    assert httpx.get(f"{site}/cityscore/gotham").status_code == 404


def test_kpi_values_are_open_data_in_ckan_and_dcat(site: str) -> None:
    names = httpx.get(f"{site}/api/3/action/package_list").json()["result"]
    assert {"kpi-values-astana", "kpi-values-almaty", "kpi-values-shymkent"} <= set(names)
    shown = httpx.get(f"{site}/api/3/action/package_show", params={"id": "kpi-values-astana"}).json()["result"]
    assert shown["num_resources"] >= 1
    catalog = httpx.get(f"{site}/catalog.jsonld").text
    assert "kpi-values-almaty" in catalog
    download = httpx.get(f"{site}/dataset/kpi-values-astana/download/kpi-values-astana.csv")
    assert download.status_code == 200
    assert "payments.count" in download.text
