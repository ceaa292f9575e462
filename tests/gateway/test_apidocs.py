"""/docs and /redoc render in a browser that can reach nothing but the hub (no CDN, no web fonts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.serving import serve_app
from gateway.app import create_app
from gateway.settings import Settings
from tests.catalogue.test_browser import ARGS, CHROMIUM

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[str]:
    settings = Settings(env="demo", database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    with serve_app(create_app(settings), "127.0.0.1", 0) as base:
        yield base


def test_the_pages_name_only_local_assets(hub: str) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(hub + page).text
        assert "cdn.jsdelivr.net" not in html
        assert "fonts.googleapis.com" not in html
    asset = httpx.get(hub + "/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert httpx.get(hub + "/docs/assets/../app.py").status_code == 404


@pytest.mark.browser
def test_swagger_ui_and_redoc_render_offline(hub: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    elsewhere: list[str] = []

    def only_the_hub(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith(hub) or url.startswith("data:"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            elsewhere.append(url)
            route.abort()  # type: ignore[attr-defined]

    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.route("**/*", only_the_hub)
            page.goto(hub + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            assert "Qala hub" in page.inner_text(".swagger-ui .info .title")
            assert page.locator(".opblock").count() > 10  # the operations are listed
            page.goto(hub + "/redoc")
            page.wait_for_selector("h1", timeout=20_000)
            assert "Qala hub" in page.inner_text("h1")
        finally:
            browser.close()
    # ReDoc's "powered by" footer names its logo on cdn.redoc.ly: decorative, and the page works without it.
    assert [url for url in elsewhere if url != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
