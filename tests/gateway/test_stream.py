"""GET /api/v1/stream: Server-Sent Events resumable with Last-Event-ID, redacted, with heartbeats, and a
consumer that stops reading is cut off while the hub's memory stays flat."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from conformance.serving import serve_app
from gateway.app import create_app
from gateway.routes.stream import CLOSING, EventStream
from gateway.settings import Settings
from tests.conftest import _postgres_database
from tests.gateway.exchange_fixtures import service_request
from tests.gateway.serving import HubProcess, register_client
from tests.gateway.subscription_fixtures import quick_settings

BURST = 6000
WRITER = ["service-requests:read", "service-requests:write", "service-requests:read-personal"]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url, issuer="http://127.0.0.1", stream_heartbeat_seconds=0.3)


@pytest.fixture
def hub(settings: Settings) -> Iterator[str]:
    with serve_app(create_app(settings)) as base:
        yield base


def token(base: str, database_url: str, scopes: list[str], cities: tuple[str, ...] = ("astana",)) -> dict[str, str]:
    client_id, secret = register_client(database_url, scopes, list(cities))
    response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """(id, data) of each event, and (None, comment) for comment lines."""
    event_id = None
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield None, line
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield event_id, line[6:]


async def take(base: str, headers: dict[str, str], count: int, **params: str) -> tuple[list[dict[str, Any]], str]:
    got: list[dict[str, Any]] = []
    last = ""
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream("GET", "/api/v1/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event_id, data in events(response):
            if event_id is not None:
                got.append(json.loads(data))
                last = event_id
                if len(got) == count:
                    break
    return got, last


def write(base: str, headers: dict[str, str], names: list[str], city: str = "astana") -> None:
    body = b"".join(orjson.dumps(service_request(name, city=city)) + b"\n" for name in names)
    response = httpx.post(
        f"{base}/api/v1/batch", content=body, headers={**headers, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code in (200, 207)


async def test_a_reconnecting_consumer_misses_nothing(hub: str, database_url: str) -> None:
    writer = await asyncio.to_thread(token, hub, database_url, WRITER)
    reader = await asyncio.to_thread(token, hub, database_url, ["service-requests:read"])
    first_names = [f"S-{i:02d}" for i in range(20)]
    consumer = asyncio.create_task(take(hub, reader, 12, types="ServiceRequest"))
    await asyncio.sleep(0.5)  # connected: the stream starts at the head
    await asyncio.to_thread(write, hub, writer, first_names)
    first, last_id = await consumer
    # gone after 12; meanwhile more changes commit
    later_names = [f"S-{i:02d}" for i in range(20, 30)]
    await asyncio.to_thread(write, hub, writer, later_names)
    rest, _ = await take(hub, {**reader, "Last-Event-ID": last_id}, 18, types="ServiceRequest")
    ids = [change["id"].rsplit(":", 1)[1] for change in first + rest]
    assert ids == first_names + later_names
    assert all("contactPhone" not in change["entity"] for change in first + rest), "no read-personal, redacted"


async def test_personal_fields_only_of_the_readers_own_cities(hub: str, database_url: str) -> None:
    writer = await asyncio.to_thread(token, hub, database_url, WRITER, ("astana", "almaty"))
    reader = await asyncio.to_thread(token, hub, database_url, WRITER)  # read-personal, for astana only
    consumer = asyncio.create_task(take(hub, reader, 4, types="ServiceRequest"))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(write, hub, writer, ["P-1", "P-2"])
    await asyncio.to_thread(write, hub, writer, ["A-1", "A-2"], "almaty")
    got, _ = await consumer
    assert [change["city"] for change in got] == ["astana", "astana", "almaty", "almaty"]
    assert all("contactPhone" in change["entity"] for change in got[:2])
    assert all("contactPhone" not in change["entity"] for change in got[2:]), "another city's personal data"


async def test_heartbeats_and_scope(hub: str, database_url: str) -> None:
    devices = await asyncio.to_thread(token, hub, database_url, ["devices:read"])
    async with httpx.AsyncClient(base_url=hub, timeout=10) as http:
        refused = await http.get("/api/v1/stream", params={"types": "ServiceRequest"}, headers=devices)
        assert refused.status_code == 403
        assert refused.json()["type"] == "https://qala.kz/problems/insufficient-scope"
        beats = 0
        async with http.stream("GET", "/api/v1/stream", headers=devices) as response:
            async for _, comment in events(response):
                beats += comment == ": heartbeat"
                if beats == 2:
                    break
    assert beats == 2


def test_stopping_the_hub_ends_its_streams_between_events(settings: Settings, database_url: str) -> None:
    """The server ends open streams as it stops (gateway.draining), after whole events only, so a consumer resumes
    with the last id it saw and misses nothing. Before, the server waited for its consumers: ``serve_app`` (which
    ``qala demo`` runs) gave up on the server's thread after 10 s and left it serving."""
    hub = serve_app(create_app(settings))
    base = hub.__enter__()
    stopping = threading.Thread(target=hub.__exit__, args=(None, None, None))
    try:
        writer = token(base, database_url, WRITER)
        reader = token(base, database_url, ["service-requests:read"])
        with httpx.stream("GET", f"{base}/api/v1/stream", headers=reader, params={"types": "ServiceRequest"}) as got:
            lines = got.iter_lines()
            assert [next(lines), next(lines)] == ["retry: 2000", ": connected"]
            write(base, writer, [f"D-{i}" for i in range(5)])
            stopping.start()
            rest, deadline = [], time.monotonic() + 30
            for line in lines:  # raises httpx.RemoteProtocolError if the response is cut off rather than ended
                rest.append(line)
                if time.monotonic() > deadline:  # heartbeats: the stream went on
                    break
    finally:
        if stopping.ident is None:  # failed before the stop: stop here
            hub.__exit__(None, None, None)
        stopping.join(timeout=30)
    assert not stopping.is_alive()
    assert [thread for thread in threading.enumerate() if thread.name == f"serve-{urlsplit(base).port}"] == []
    assert rest[-2:] == [": the server is shutting down; reconnect", ""]
    ids = [line[4:] for line in rest if line.startswith("id: ")]
    data = [json.loads(line[6:]) for line in rest if line.startswith("data: ")]
    assert len(ids) == len(data) <= 5  # each event whole: as many ids as data lines
    assert [change["id"].rsplit(":", 1)[1] for change in data] == [f"D-{i}" for i in range(len(data))]


async def _drained_after(delay: float) -> list[tuple[bool, dict[str, Any]]]:
    """What a busy stream sends, each message with whether the drain had begun, when draining after ``delay``."""
    draining, sent = asyncio.Event(), []

    async def events() -> AsyncIterator[bytes]:
        for i in range(10_000):
            await asyncio.sleep(0)
            yield b"id: %d\n\n" % i

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append((draining.is_set(), dict(message)))
        await asyncio.sleep(0)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the consumer stays
        raise AssertionError

    stream = asyncio.create_task(EventStream(events(), 30.0, draining)({"type": "http"}, receive, send))
    await asyncio.sleep(delay)
    draining.set()
    await asyncio.wait_for(stream, 5)  # ended, not streaming on
    return sent


async def test_a_stream_ends_at_the_drain_wherever_it_is() -> None:
    """Draining at any moment of a busy stream ends it at once with the closing comment as its only last message:
    on Python 3.11 a cancel that lands as an ``asyncio.wait_for`` finishes is dropped, and a stream drained with
    one cancel went on in about half of such trials (a review's repro, with the pump's send timeout)."""
    rnd = random.Random(7)
    for _ in range(100):
        sent = await _drained_after(rnd.uniform(0.0005, 0.01))
        after = [message for was_draining, message in sent if was_draining]
        assert after[-1] == {"type": "http.response.body", "body": CLOSING, "more_body": False}
        assert [message.get("more_body") for _, message in sent].count(False) == 1
        assert len(after) <= 2  # the closing comment, and at most one event already on its way


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.mark.postgres
def test_a_consumer_that_stops_reading_is_cut_off_and_memory_stays_flat(pg_url: str) -> None:
    """On PostgreSQL: on SQLite each pooled connection's page cache (32 MiB) fills as the stream reads, which
    is memory the hub keeps whether or not anyone stalls, and would hide what this test is about."""
    url = pg_url
    hub = HubProcess(url, env={"QALA_STREAM_STALL_SECONDS": "2", "QALA_STREAM_HEARTBEAT_SECONDS": "0.5"})
    hub.start()
    try:
        writer = token(hub.base, url, WRITER)
        description = "x" * 2000

        def burst(prefix: str) -> None:
            for start in range(0, BURST, 500):
                names = [f"{prefix}-{i}" for i in range(start, start + 500)]
                body = b"".join(orjson.dumps(service_request(name, description=description)) + b"\n" for name in names)
                httpx.post(
                    f"{hub.base}/api/v1/batch",
                    content=body,
                    headers={**writer, "Content-Type": "application/x-ndjson"},
                    timeout=60,
                )

        burst("WARM")  # the hub's own working set for such writes, before anyone streams
        assert hub.process is not None
        before = _rss_kib(hub.process.pid)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", hub.port))
        request = (
            f"GET /api/v1/stream?types=ServiceRequest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {writer['Authorization']}\r\nAccept: text/event-stream\r\n\r\n"
        )
        stalled.sendall(request.encode())
        time.sleep(0.5)
        burst("HOT")  # about 12 MB of events the stalled consumer never reads
        time.sleep(3)  # past the stall limit
        after = _rss_kib(hub.process.pid)
        stalled.settimeout(10)
        received = 0
        while True:  # now read: what was in flight, then the end of the connection
            chunk = stalled.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        stalled.close()
        # What reached it is what the kernel's socket buffers held when the hub stopped sending (a few MB on
        # loopback), then the connection ends: without the cut-off, recv would run into its timeout instead.
        assert received < BURST * len(description) / 2, f"{received} bytes: the hub kept sending"
        assert after - before < 20_000, f"RSS grew from {before} to {after} KiB"
    finally:
        hub.stop()


async def test_a_stream_subscription_selects_what_its_stream_carries(hub: str, database_url: str) -> None:
    writer = await asyncio.to_thread(token, hub, database_url, WRITER)
    reader = await asyncio.to_thread(token, hub, database_url, ["service-requests:read"])
    body = {"types": ["ServiceRequest"], "filters": {"status": "closed"}, "delivery": {"kind": "stream"}}
    created = httpx.post(f"{hub}/api/v1/subscriptions", json=body, headers=reader).json()
    assert "secret" not in created
    consumer = asyncio.create_task(take(hub, reader, 2, subscription=created["id"]))
    await asyncio.sleep(0.5)
    open_one = service_request("SUB-OPEN")
    closed = [
        service_request(f"SUB-CLOSED-{i}", status="closed", dateClosed="2024-03-13T10:00:00+05:00") for i in (1, 2)
    ]
    payload = b"".join(orjson.dumps(entity) + b"\n" for entity in [open_one, *closed])
    response = httpx.post(
        f"{hub}/api/v1/batch", content=payload, headers={**writer, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code in (200, 207), response.text
    got, _ = await asyncio.wait_for(consumer, 30)
    assert [c["id"].rsplit(":", 1)[1] for c in got] == ["SUB-CLOSED-1", "SUB-CLOSED-2"]
    other = httpx.post(
        f"{hub}/api/v1/subscriptions",
        json={"types": ["ServiceRequest"], "delivery": {"kind": "webhook", "url": "http://127.0.0.1:9/x"}},
        headers=reader,
    ).json()
    refused = httpx.get(f"{hub}/api/v1/stream", params={"subscription": other["id"]}, headers=reader)
    assert refused.status_code == 400
