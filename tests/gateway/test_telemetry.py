"""OpenTelemetry: one server span per request named by route template, traceparent honoured, duration metric."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.app import create_app
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from tests.gateway.conftest import ISSUER, get_token

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
router = APIRouter()


@router.get("/api/v1/fail/{code}")
async def fail(code: int) -> None:
    raise RuntimeError(f"failure {code}")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
async def app(
    settings: Settings, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> AsyncIterator[FastAPI]:
    telemetry = Telemetry.from_settings(settings, span_exporter=exporter, metric_reader=reader)
    application = create_app(settings, telemetry=telemetry, routers=[router])
    async with application.router.lifespan_context(application):
        yield application


def durations(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "http.server.request.duration":
                    assert metric.unit == "s"
                    points += [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]
    return points


async def test_span_per_request_continues_the_callers_trace(
    app: FastAPI, http: httpx.AsyncClient, register: Any, exporter: InMemorySpanExporter
) -> None:
    admin = await register(scopes=["admin"])
    token = await get_token(http, admin)
    exporter.clear()
    response = await http.get(
        f"/api/v1/admin/clients/{admin.client_id}",
        headers={"Authorization": f"Bearer {token}", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /api/v1/admin/clients/{client_id}", "route template, never the raw path"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/v1/admin/clients/{client_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


async def test_4xx_leaves_status_unset_and_5xx_is_an_error(
    app: FastAPI, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert (await http.get("/api/v1/whoami")).status_code == 401
        assert (await http.get("/api/v1/fail/7")).status_code == 500
    unauthorised, failed = exporter.get_finished_spans()
    assert unauthorised.name == "GET /api/v1/whoami"
    assert unauthorised.status.status_code is StatusCode.UNSET
    assert failed.name == "GET /api/v1/fail/{code}"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "RuntimeError"
    assert failed.context.trace_id != unauthorised.context.trace_id, "no traceparent: a new trace each"

    points = {(p.attributes["http.route"], p.attributes["http.response.status_code"]): p for p in durations(reader)}
    assert set(points) >= {("/api/v1/whoami", 401), ("/api/v1/fail/{code}", 500)}
    whoami = points["/api/v1/whoami", 401]
    assert whoami.attributes["http.request.method"] == "GET"
    assert whoami.count == 1
    assert 0 < whoami.sum < 5, "seconds, not milliseconds"


async def test_unknown_paths_do_not_name_spans_after_the_raw_path(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await http.get("/secret/urn:ngsi-ld:ServiceRequest:astana:42")
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET"
    await http.request("BREW", "/oauth/jwks")
    assert exporter.get_finished_spans()[-1].name.startswith("_OTHER")


@pytest.mark.parametrize(
    "traceparent",
    [None, f"00-{TRACE_ID}-{PARENT_ID}-01", f"00-{TRACE_ID}-{PARENT_ID}-00", f"00-{TRACE_ID}-{PARENT_ID}-03"],
)
def test_without_an_exporter_the_span_context_is_the_sdks(settings: Settings, traceparent: str | None) -> None:
    """With nothing exported the middleware makes a span for its context alone; that context (trace id kept or
    new, sampled and random flags, trace state, never remote) is the one the SDK's tracer gives the server span."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    from gateway.telemetry import TelemetryMiddleware  # noqa: PLC0415

    telemetry = Telemetry.from_settings(settings)
    assert not telemetry.exports_spans
    middleware = TelemetryMiddleware(FastAPI(), telemetry)
    carrier = {"traceparent": traceparent, "tracestate": "qala=1"} if traceparent else {}
    parent = TraceContextTextMapPropagator().extract(carrier)
    ours = middleware._context_only("GET", parent)
    sdks = telemetry.tracer.start_span("GET", context=parent, kind=SpanKind.SERVER)
    assert not ours.is_recording()
    mine, theirs = ours.get_span_context(), sdks.get_span_context()
    assert (mine.trace_flags, mine.trace_state, mine.is_remote) == (theirs.trace_flags, theirs.trace_state, False)
    assert mine.is_valid
    assert mine.span_id != theirs.span_id
    if traceparent:
        assert format(mine.trace_id, "032x") == TRACE_ID
    else:
        assert mine.trace_id != theirs.trace_id, "a new trace each"


@pytest.mark.parametrize("sampler", ["parentbased_always_off", "always_off", "traceidratio"])
@pytest.mark.parametrize("traceparent", [None, f"00-{TRACE_ID}-{PARENT_ID}-01"])
def test_without_an_exporter_another_sampler_decides(
    settings: Settings, sampler: str, traceparent: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default sampler's answer for a span without a parent is known and not asked for; any other sampler (set
    by ``OTEL_TRACES_SAMPLER``) still decides, as it does for the SDK's span."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    from gateway.telemetry import TelemetryMiddleware  # noqa: PLC0415

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    telemetry = Telemetry.from_settings(settings)
    middleware = TelemetryMiddleware(FastAPI(), telemetry)
    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent} if traceparent else {})
    mine = middleware._context_only("GET", parent).get_span_context()
    theirs = telemetry.tracer.start_span("GET", context=parent, kind=SpanKind.SERVER).get_span_context()
    assert (mine.trace_flags, mine.trace_state) == (theirs.trace_flags, theirs.trace_state)
    if not traceparent or sampler != "parentbased_always_off":
        assert not mine.trace_flags.sampled


_GLOBAL_PROVIDERS = """
import asyncio, sys
import httpx
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from gateway.app import create_app
from gateway.settings import Settings
from gateway.telemetry import Telemetry

process_wide, own = InMemorySpanExporter(), InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(process_wide))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
settings = Settings(env="demo", database_url=sys.argv[1])
app = create_app(settings, telemetry=Telemetry.from_settings(settings, span_exporter=own))

async def main() -> None:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            assert (await client.get("/oauth/jwks")).status_code == 200
            assert (await client.get("/api/v1/service-requests")).status_code == 401

asyncio.run(main())
data = reader.get_metrics_data()
assert [span.name for span in own.get_finished_spans()] == ["GET /oauth/jwks", "GET /api/v1/service-requests"]
assert process_wide.get_finished_spans() == (), [span.name for span in process_wide.get_finished_spans()]
assert data is None or not [m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics], data
print("ok")
"""


def test_fastapis_own_telemetry_stays_off_under_process_wide_providers(tmp_path: Any) -> None:
    """One server span per request, the hub's, even where something set OpenTelemetry's process-wide providers:
    FastAPI would otherwise add its own span and duration on them. In a process of its own, as those providers can
    be set once per process."""
    done = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDERS, f"sqlite:///{tmp_path / 'qala.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
