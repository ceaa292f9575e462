"""The public pages in a real browser: Playwright driving Debian's chromium (never a downloaded one)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import Served, loaded_source, serve

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
