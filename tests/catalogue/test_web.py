"""Public pages in process: languages, cookie, search with facets, dataset page, registry, 404."""

from __future__ import annotations

import re

import httpx

from catalogue.i18n import LOCALES, MESSAGES, negotiate
from catalogue.service import Catalogue


def test_every_message_exists_in_every_language() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LOCALES), key


def test_language_negotiation() -> None:
    assert negotiate(None, None) == "kk"
    assert negotiate(None, "ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert negotiate("en", "ru") == "en"
    assert negotiate("fr", "de") == "kk"


async def test_home_in_three_languages(http: httpx.AsyncClient) -> None:
    expected = {"kk": "Деректер жиынтығын іздеу", "ru": "Поиск наборов данных", "en": "Search datasets"}
    for locale, label in expected.items():
        page = await http.get("/", headers={"Accept-Language": locale})
        assert page.status_code == 200
        assert f'<html lang="{locale}">' in page.text
        assert f'<label for="q">{label}</label>' in page.text
        for landmark in ("<header", "<nav", '<main id="content"', "<footer", 'role="search"'):
            assert landmark in page.text


async def test_language_choice_is_remembered_in_a_cookie(http: httpx.AsyncClient) -> None:
    response = await http.get("/lang/ru?next=/dataset")
    assert response.status_code == 303
    assert response.headers["location"] == "/dataset"
    assert "qala_lang=ru" in response.headers["set-cookie"]
    page = await http.get("/dataset", headers={"Accept-Language": "en"})
    assert '<html lang="ru">' in page.text
    assert (await http.get("/lang/ru?next=//evil.example")).headers["location"] == "/"
    assert (await http.get("/lang/de")).status_code == 404


async def test_search_page_with_facets_and_paging(http: httpx.AsyncClient) -> None:
    http.cookies.set("qala_lang", "en")
    page = (await http.get("/dataset", params={"organization": "astana", "groups": "mobility"})).text
    assert "Datasets found: 2" in page
    assert 'href="/dataset/traffic-flow-observed-astana"' in page
    assert "Mobility" in page
    everything = (await http.get("/dataset")).text
    assert "Datasets found: 25" in everything
    assert 'rel="next"' in everything
    second = (await http.get("/dataset?page=2")).text
    assert len(re.findall(r'class="dataset-item"', second)) == 5


async def test_dataset_page_shows_freshness_lineage_preview_and_api(
    http: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    http.cookies.set("qala_lang", "en")
    page = (await http.get("/dataset/air-quality-observed-almaty")).text
    assert "<h1" in page
    assert "Air quality — Almaty" in page
    for section in ("freshness-heading", "lineage-heading", "preview-heading", "downloads-heading", "api-heading"):
        assert f'id="{section}"' in page
    assert "Median data latency" in page
    assert '<th scope="col" data-field="pm25">PM2.5, µg/m³</th>' in page
    assert "very unhealthy" in page  # airQualityLevel's label, not "veryUnhealthy"
    assert "urn:ngsi-ld:" not in page.split('id="preview"')[1].split("</table>")[0]
    assert "18 Jan 2024, 09:00" in page  # 09:00+06:00 stays 09:00 local (Almaty was UTC+6 until March 2024)
    assert 'class="map"' in page
    assert 'class="chart"' in page
    assert "datastore_search?resource_id=" in page
    aggregated = (await http.get("/dataset/payment-transactions-astana")).text
    assert "only aggregates are published" in aggregated
    assert "payerRef" not in aggregated
    assert re.search(r"\d+ cells in \d+ rows are hidden: they hold fewer than 10 payments", aggregated)
    assert "<td>true</td>" not in aggregated
    assert 'class="chart"' in aggregated  # daily totals as bars
    assert 'class="map"' not in aggregated
    ru = (await http.get("/dataset/air-quality-observed-astana", headers={"Cookie": "qala_lang=ru"})).text
    assert "14 февр. 2025, 13:00" in ru  # 08:00Z is 13:00 in Astana (UTC+5 since March 2024)
    assert "непрерывно" in ru
    meters = (await http.get("/dataset/meter-readings-astana")).text
    assert meters.count('class="chart"') == 2  # kWh and Gcal each on their own axis, never mixed
    assert (await http.get("/dataset/nope")).status_code == 404


async def test_organisations_modules_and_api_pages(http: httpx.AsyncClient, catalogue: Catalogue) -> None:
    http.cookies.set("qala_lang", "kk")
    assert "Астана" in (await http.get("/organization")).text
    assert "Алматы" in (await http.get("/organization/almaty")).text
    assert "Әзірге сертификатталған модульдер жоқ." in (await http.get("/modules")).text
    catalogue.modules = lambda: [
        {  # as GET /api/v1/modules lists them
            "moduleName": "iKOMEK 109",
            "vendor": "ACME LLP",
            "moduleVersion": "2.1.0",
            "profile": "service-requests",
            "issuedAt": 1740787200,
        }
    ]
    page = (await http.get("/modules")).text
    assert "iKOMEK 109 (ACME LLP)</td><td>2.1.0</td>" in page
    assert "1 нау. 2025, 05:00" in page  # issued 00:00 UTC, shown in Astana time like every other moment
    assert "ckanapi" in (await http.get("/api-docs")).text
    assert (await http.get("/static/catalogue/catalogue.css")).headers["content-type"].startswith("text/css")
    assert (await http.get("/static/catalogue/../app.py")).status_code == 404
