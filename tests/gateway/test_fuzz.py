"""Schemathesis over the hub's own OpenAPI document, against a real server on each engine: no input may make it
answer 5xx. Bounded (a few examples per operation) so that one engine takes well under a minute.

The client holds every scope and every city, so requests get past authentication into the routes; the body of a
5xx is printed with the failing case's curl command.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.clients import known_scopes
from gateway.settings import Settings
from tests.gateway.serving import free_port, register_client

schemathesis = pytest.importorskip("schemathesis", reason="pip install --no-deps 'schemathesis>=4.32' (make test does)")


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """Batch and quarantine bodies: generated text as it is, anything else one JSON document per line."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


EXAMPLES_PER_OPERATION = 3
SKIPPED = {
    # Streams that never end on their own, and the token endpoint's abuse throttle, are not for a fuzzer.
    "/api/v1/stream",
}


@dataclass
class Running:
    base: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def hub(database_url: str) -> Iterator[Running]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(env="demo", database_url=database_url, issuer=base, key_publish_lead=0, rate_limit_enabled=False)
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.05)
    yield Running(base, server, thread)
    server.should_exit = True
    thread.join(timeout=15)


def token(base: str, database_url: str) -> str:
    client_id, secret = register_client(database_url, sorted(known_scopes()), ["*"])
    response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def fuzz(operation: Any, base: str, headers: dict[str, str], failures: list[str]) -> int:
    """Send ``EXAMPLES_PER_OPERATION`` generated requests (with and without the token); the number sent."""
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), with_token=st.booleans())
    def probe(case: Any, with_token: bool) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=base, headers=headers if with_token else {}, timeout=20)
        if response.status_code >= 500:
            curl = case.as_curl_command()
            failures.append(f"{operation.label}: {response.status_code} {response.text[:300]}\n  {curl}")

    probe()
    return sent


def test_no_input_makes_the_hub_answer_5xx(hub: Running, database_url: str) -> None:
    headers = {"Authorization": f"Bearer {token(hub.base, database_url)}"}
    document = httpx.get(f"{hub.base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in SKIPPED:
            calls += fuzz(operation, hub.base, headers, failures)
    print(f"{calls} generated requests over {len(document['paths'])} paths")
    assert calls > 100
    assert not failures, "\n".join(failures[:20])
