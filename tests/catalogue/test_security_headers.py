"""Security headers on the catalogue's pages, and the pages still working in Chromium under their policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalogue.headers import PAGE_POLICY
from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import Served, loaded_source, serve
from tests.catalogue.test_browser import ARGS, CHROMIUM


@pytest.mark.parametrize("path", ["/", "/dataset", "/organization", "/dataset/no-such-dataset"])
async def test_html_pages_send_csp_frame_options_nosniff_and_referrer_policy(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_json_answers_are_nosniff_without_a_page_policy(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/3/action/status_show")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


@pytest.fixture
def site(tmp_path: Path, registry: SchemaRegistry) -> Iterator[Served]:
    running = serve(f"sqlite:///{tmp_path / 'csp.db'}", loaded_source(registry), registry)
    yield running
    running.stop()


RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
"""


@pytest.mark.browser
def test_pages_work_under_the_policy_and_injected_script_is_blocked(site: Served) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
            page.add_init_script(RECORD_VIOLATIONS)
            for path in ("/", "/dataset?q=air", "/dataset/air-quality-observed-astana", "/organization"):
                page.goto(site.url + path)
                page.wait_for_load_state("load")
                assert page.evaluate("window.__violations") == [], path
                # the stylesheet applied (a page without it has the browser's default 8px body margin)
                assert page.evaluate("getComputedStyle(document.body).margin") != "8px", path
            page.evaluate(
                """() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';
                          document.body.appendChild(s); }"""
            )
            page.wait_for_function("window.__violations.length > 0")
            assert page.evaluate("window.__ran") is None
            assert "script-src" in page.evaluate("window.__violations")[0]
        finally:
            browser.close()
