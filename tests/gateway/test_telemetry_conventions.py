"""The HTTP semantic conventions on the hub's spans and duration metric, as an OTel backend reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.settings import Settings
from gateway.telemetry import Telemetry, redact_query
from tests.gateway.test_telemetry import durations


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
async def traced(
    settings: Settings, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> AsyncIterator[httpx.AsyncClient]:
    telemetry = Telemetry.from_settings(settings, span_exporter=exporter, metric_reader=reader)
    application: FastAPI = create_app(settings, telemetry=telemetry)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 51234))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.example.kz:8443") as client:
            yield client


async def test_server_span_carries_request_attributes(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await traced.get("/api/v1/schemas?limit=5&api_key=s3cr3t", headers={"User-Agent": "city-dashboard/2.1"})
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["url.path"] == "/api/v1/schemas"
    assert attributes["url.query"] == "limit=5&api_key=REDACTED", "credentials never reach the trace backend"
    assert attributes["url.scheme"] == "http"
    assert attributes["server.address"] == "hub.example.kz"
    assert attributes["server.port"] == 8443
    assert attributes["client.address"] == "203.0.113.7"
    assert attributes["client.port"] == 51234
    assert attributes["user_agent.original"] == "city-dashboard/2.1"
    assert attributes["network.protocol.version"] == "1.1"
    assert span.name == "GET /api/v1/schemas"


async def test_duration_metric_carries_the_url_scheme(traced: httpx.AsyncClient, reader: InMemoryMetricReader) -> None:
    await traced.get("/api/v1/schemas")
    (point,) = durations(reader)
    assert point.attributes["url.scheme"] == "http"
    assert point.attributes["http.route"] == "/api/v1/schemas"


async def test_ckan_spans_are_named_by_action_and_unknown_actions_stay_generic(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await traced.get("/api/3/action/package_list")
    await traced.get("/api/action/status_show")
    await traced.get("/api/3/action/no_such_action_123")
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == [
        "GET /api/3/action/package_list",
        "GET /api/action/status_show",
        "GET /api/3/action/{name}",
    ]


def test_redaction_keeps_everything_else_as_sent() -> None:
    assert redact_query("a=1&token=x&b=%20&flag") == "a=1&token=REDACTED&b=%20&flag"
    assert redact_query("API_KEY=z") == "API_KEY=REDACTED"
