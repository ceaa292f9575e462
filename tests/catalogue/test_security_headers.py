"""Security headers on the catalogue's pages, and the pages still working in Chromium under their policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.datastructures import MutableHeaders

from catalogue.headers import ALWAYS, HTML_ONLY, PAGE_POLICY, add_headers, policy_for
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


def _with_mutable_headers(message: dict[str, Any], path: str) -> None:
    """What the middleware did before :func:`add_headers`: Starlette's ``MutableHeaders.setdefault`` per header."""
    headers = MutableHeaders(scope=message)
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if headers.get("content-type", "").startswith("text/html"):
        for name, value in HTML_ONLY.items():
            headers.setdefault(name, value)
        headers.setdefault("content-security-policy", policy_for(path))


@pytest.mark.parametrize("path", ["/dataset", "/docs", "/api/v1/service-requests"])
@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json"), (b"content-length", b"2")],
        [(b"content-type", b"text/html; charset=utf-8"), (b"etag", b'"1"')],
        [(b"content-type", b"text/plain"), (b"content-type", b"text/html")],
        [(b"content-type", b"text/html"), (b"content-type", b"text/plain")],
        [(b"Content-Type", b"text/html"), (b"X-Frame-Options", b"SAMEORIGIN")],
        [(b"content-type", b"text/html"), (b"x-frame-options", b"SAMEORIGIN"), (b"referrer-policy", b"no-referrer")],
        [(b"content-security-policy", b"default-src 'none'"), (b"content-type", b"text/html"), (b"x-a", b"1")],
        [(b"x-content-type-options", b"nosniff"), (b"x-content-type-options", b"other")],
        ((b"content-type", b"text/html"),),
    ],
)
def test_added_headers_are_those_mutable_headers_added(headers: Any, path: str) -> None:
    """The same headers in the same order, and a new list in the message (the response keeps its own)."""
    ours = {"type": "http.response.start", "status": 200, "headers": headers}
    theirs = {"type": "http.response.start", "status": 200, "headers": headers}
    add_headers(ours, path)
    _with_mutable_headers(theirs, path)
    assert ours == theirs
    assert ours["headers"] is not headers
    assert type(ours["headers"]) is list


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
