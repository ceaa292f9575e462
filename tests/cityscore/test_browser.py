"""The CityScore pages in a real browser (Debian's chromium through Playwright), in all three languages, with
screenshots saved in the test's directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")
ALLOWED = {"CityScore", "Qala", "CSV", "KZT", "ACSC"}
VISIBLE_TEXT = """() => {
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('svg, code, [lang]:not([lang="' + document.documentElement.lang + '"])')
       .forEach((node) => node.remove());
  return clone.innerText;
}"""

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.mark.parametrize(("locale", "browser_locale"), [("kk", "kk-KZ"), ("ru", "ru-RU"), ("en", "en-GB")])
def test_city_page_ranking_and_kpi_page(
    site: str, browser: object, tmp_path: Path, locale: str, browser_locale: str
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale=browser_locale)  # type: ignore[attr-defined]
    page.goto(f"{site}/cityscore")  # no ?lang=: the browser's language decides
    assert page.get_attribute("html", "lang") == locale
    rows = page.locator("#ranking-day ~ table tbody tr")
    assert rows.count() == 3
    page.locator("#ranking-day ~ table a").first.click()
    page.wait_for_url("**/cityscore/*")
    charts = page.locator("figure svg[role=img]")
    assert charts.count() >= 9
    first = charts.first.bounding_box()
    assert first is not None
    assert first["width"] > 300
    assert first["height"] > 100
    assert page.locator("figure svg path.line").count() >= 9  # the lines are drawn, not just the axes
    page.screenshot(path=str(tmp_path / f"cityscore-city-{locale}.png"), full_page=True)
    text = page.evaluate(VISIBLE_TEXT)
    if locale != "en":
        assert not set(LATIN_WORD.findall(text)) - ALLOWED
    page.get_by_role("link", name=re.compile(r"PM2\.5")).first.click()
    page.wait_for_url("**/kpis/air.pm25-exceedance-hours*")
    assert page.locator("figure svg[role=img]").count() == 1
    page.screenshot(path=str(tmp_path / f"cityscore-kpi-{locale}.png"), full_page=True)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for name in (f"cityscore-city-{locale}.png", f"cityscore-kpi-{locale}.png"):
        assert (tmp_path / name).stat().st_size > 20_000
    page.close()
