"""The public pages in a real browser: Playwright driving Debian's chromium (never a downloaded one)."""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import Served, loaded_source, serve
from tests.catalogue.latin import untranslated

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def site(tmp_path: Path, registry: SchemaRegistry) -> Iterator[Served]:
    running = serve(f"sqlite:///{tmp_path / 'browser.db'}", loaded_source(registry), registry)
    yield running
    running.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


COLOURS = """async (data) => {
  const image = new Image();
  image.src = "data:image/png;base64," + data;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const seen = new Set();
  for (let i = 0; i < pixels.length; i += 4 * 97) seen.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
  return seen.size;
}"""


def test_home_search_dataset_language_and_screenshot(site: Served, browser: object, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="kk-KZ")  # type: ignore[attr-defined]
    page.goto(site.url + "/")
    assert page.get_attribute("html", "lang") == "kk"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    page.get_by_label("Деректер жиынтығын іздеу").fill("ауа сапасы")
    page.keyboard.press("Enter")
    page.wait_for_url("**/dataset?q=*")
    results = page.locator(".dataset-item h3 a")
    assert results.count() >= 2
    page.get_by_role("link", name="Ауа сапасы — Астана").click()
    page.wait_for_url("**/dataset/air-quality-observed-astana")
    for region in (
        "#dataset-title",
        "#metadata",
        "#freshness",
        "#lineage",
        "#downloads",
        "#preview table",
        "#api-example-code",
    ):
        assert page.locator(region).is_visible(), region
    assert page.locator("#preview tbody tr").count() == 2

    page.get_by_role("link", name="English").click()
    page.wait_for_url("**/dataset/air-quality-observed-astana")
    assert page.locator("h1").inner_text().startswith("Air quality — Astana")
    page.goto(site.url + "/")
    assert page.get_attribute("html", "lang") == "en"  # remembered in the cookie
    assert page.get_by_label("Search datasets").is_visible()

    page.goto(site.url + "/dataset/air-quality-observed-astana")
    shot = tmp_path / "dataset.png"
    png = page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 30_000
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1280
    assert height >= 900
    assert page.evaluate(COLOURS, base64.b64encode(png).decode()) > 20  # text, panels, table: not a blank page
    for region in ("#freshness", "#lineage", "#preview"):
        box = page.locator(region).bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 50


def test_small_screens_do_not_scroll_sideways(site: Served, browser: object) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800})  # type: ignore[attr-defined]
    page.goto(site.url + "/dataset?organization=astana")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    facets = page.locator(".facets").bounding_box()
    results = page.locator(".results").bounding_box()
    assert facets is not None
    assert results is not None
    assert results["y"] > facets["y"]  # stacked, not side by side


OUTPUT = Path(os.environ.get("QALA_TEST_OUTPUT", "reports")) / "screenshots" / "catalogue"
LOCAL_TIME = {
    # 2025-02-14T08:00:00Z is 13:00 in Astana (UTC+5 since 1 March 2024), written the reader's way
    "kk": "14 ақп. 2025, 13:00",
    "ru": "14 февр. 2025, 13:00",
    "en": "14 Feb 2025, 13:00",
}


@pytest.mark.parametrize("locale", ["kk", "ru", "en"])
def test_a_resident_reads_a_dataset_in_each_language(site: Served, browser: object, locale: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name in ("air-quality-observed-astana", "payment-transactions-astana", "meter-readings-astana"):
        page.goto(f"{site.url}/dataset/{name}")
        assert page.get_attribute("html", "lang") == locale
        if locale != "en":
            assert untranslated(page.content()) == [], name
        chart = page.locator("#chart svg[role=img]").first
        assert chart.is_visible(), name
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 400
        assert box["height"] > 150
        assert page.locator("#chart svg title").first.text_content()
        page.screenshot(path=str(OUTPUT / f"{name}-{locale}.png"), full_page=True)
    page.goto(f"{site.url}/dataset/air-quality-observed-astana")
    assert page.locator("#map svg[role=img] circle.point").count() == 2
    assert LOCAL_TIME[locale] in page.locator("#preview").inner_text()
    table = page.locator("#preview .table-scroll").bounding_box()
    assert table is not None
    assert table["width"] <= 1280
    assert page.evaluate("document.querySelector('#preview table').scrollWidth") <= table["width"] + 1
    payments = page.goto(f"{site.url}/dataset/payment-transactions-astana")
    assert payments is not None
    assert page.locator("#hidden-cells").is_visible()
    assert page.locator("#map").count() == 0  # aggregates carry no locations
    page.goto(f"{site.url}/organization")
    assert page.locator(".members .dataset-item").count() >= 3
    page.screenshot(path=str(OUTPUT / f"organizations-{locale}.png"), full_page=True)
    page.goto(f"{site.url}/")
    assert page.locator(".dataset-item time").count() == 6  # "recently updated" with dates
    page.screenshot(path=str(OUTPUT / f"home-{locale}.png"), full_page=True)
    assert errors == []  # no CSP or script error: charts and maps are plain SVG
    icon = page.request.get(f"{site.url}/favicon.ico")
    assert icon.ok
    assert icon.headers["content-type"].startswith("image/svg+xml")
