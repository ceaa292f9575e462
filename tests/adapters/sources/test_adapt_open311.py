from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from adapters.errors import MappingError, SourceError, SourceUnavailable
from adapters.sources.open311_fixture import Open311Fixture

FOLDER = Path(__file__).parents[3] / "examples" / "legacy" / "open311-shymkent"


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The fixture served over real HTTP on a free port; yields the base URL and the queries it saw."""
    fixture = Open311Fixture(FOLDER)
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query))
            seen.append(query)
            status, body = fixture.answer(url.path, query)
            data = orjson.dumps(body) if url.path != "/broken/requests.json" else b"<html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/open311/v2", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_pulls_every_page_over_http(convert, server) -> None:
    url, seen = server
    result = convert("open311", url, city="shymkent", page_size="10")
    assert (result.summary.read, result.summary.accepted, result.summary.rejected) == (25, 24, 1)
    assert [q["page"] for q in seen] == ["1", "2", "3"]
    assert result.quarantine[0]["reasons"][0]["message"].startswith("requested_datetime")  # no offset
    closed = result.by_local_id("SHY-5100")
    assert closed["status"] == "closed"
    assert closed["dateClosed"] == closed["dateUpdated"]
    lon, lat = closed["location"]["coordinates"]
    assert 69.5 < lon < 69.7
    assert 42.2 < lat < 42.4


def test_start_date_is_sent_and_honoured(convert, server) -> None:
    url, seen = server
    result = convert("open311", url, city="shymkent", start_date="2024-03-01T00:00:00+05:00")
    assert seen[0]["start_date"] == "2024-03-01T00:00:00+05:00"
    assert result.summary.read > 0
    assert all(e["dateRequested"] >= "2024-03-01" for e in result.entities)
    assert {e["dateRequested"][-6:] for e in result.entities} == {"+05:00"}


def test_folder_fixture_in_process(convert) -> None:
    result = convert("open311", FOLDER, city="shymkent", page_size="7")
    assert (result.summary.read, result.summary.accepted) == (25, 24)


def test_unreachable_server_and_non_json(convert, server) -> None:
    with pytest.raises(SourceUnavailable, match="cannot reach the Open311 server"):
        convert("open311", "http://127.0.0.1:9/open311", city="shymkent")
    url, _ = server
    with pytest.raises(SourceError, match="not JSON"):
        convert("open311", url.replace("/open311/v2", "/broken"), city="shymkent")
    with pytest.raises(MappingError, match="city"):
        convert("open311", url)
