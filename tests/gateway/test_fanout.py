"""Fan-out to NATS JetStream (the NATS server on 127.0.0.1:4222): one subject per city and type, public view only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import orjson
import pytest
from nats.js.errors import NotFoundError

from gateway.settings import Settings
from gateway.subscriptions.fanout import STREAM
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer, service_request
from tests.gateway.subscription_fixtures import quick_settings

NATS_URL = "nats://127.0.0.1:4222"
pytestmark = pytest.mark.nats


@pytest.fixture
async def clean_stream() -> AsyncIterator[None]:
    """Each test starts from an empty stream: feed positions restart with every fresh database."""
    client = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        with contextlib.suppress(NotFoundError):
            await client.jetstream().delete_stream(STREAM)
        yield
    finally:
        await client.close()


@pytest.fixture
def settings(database_url: str, clean_stream: None) -> Settings:
    return quick_settings(database_url, nats_url=NATS_URL)


async def test_committed_changes_reach_their_city_and_type_subject_without_personal_fields(
    http: httpx.AsyncClient, register: Any
) -> None:
    scopes = ["service-requests:read", "service-requests:write", "service-requests:read-personal"]
    writer = bearer(await get_token(http, await register(scopes=scopes, cities=["astana", "almaty"])))
    lines = [service_request(f"N-{i}") for i in range(3)] + [service_request("N-ALM", city="almaty")]
    body = b"".join(orjson.dumps(entity) + b"\n" for entity in lines)
    await http.post("/api/v1/batch", content=body, headers={**writer, "Content-Type": "application/x-ndjson"})

    client = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        stream = client.jetstream()
        for _ in range(100):  # the publisher polls the feed
            with contextlib.suppress(NotFoundError):
                if (await stream.stream_info(STREAM)).state.messages >= 4:
                    break
            await asyncio.sleep(0.1)
        astana = await stream.pull_subscribe("qala.changes.astana.ServiceRequest", durable=None, stream=STREAM)
        messages = await astana.fetch(10, timeout=5)
        changes = [orjson.loads(message.data) for message in messages]
        almaty = await stream.pull_subscribe("qala.changes.almaty.*", durable=None, stream=STREAM)
        elsewhere = [orjson.loads(message.data) for message in await almaty.fetch(10, timeout=5)]
    finally:
        await client.close()
    assert [c["id"].rsplit(":", 1)[1] for c in changes] == ["N-0", "N-1", "N-2"]
    assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
    assert all("contactPhone" not in c["entity"] for c in changes), "personal fields never go to NATS"
    assert [c["id"].rsplit(":", 1)[1] for c in elsewhere] == ["N-ALM"]
