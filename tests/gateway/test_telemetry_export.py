"""The middleware records span attributes and durations only where an exporter or reader can see them."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.settings import Settings
from gateway.telemetry import Telemetry


def test_exports_follow_the_configured_exporters() -> None:
    settings = Settings(env="demo")
    silent = Telemetry.from_settings(settings)
    assert (silent.exports_spans, silent.exports_metrics) == (False, False)
    spans = Telemetry.from_settings(settings, span_exporter=InMemorySpanExporter())
    assert (spans.exports_spans, spans.exports_metrics) == (True, False)
    metrics = Telemetry.from_settings(settings, metric_reader=InMemoryMetricReader())
    assert (metrics.exports_spans, metrics.exports_metrics) == (False, True)
    remote = Telemetry.from_settings(Settings(env="demo", otlp_endpoint="http://127.0.0.1:4318"))
    assert (remote.exports_spans, remote.exports_metrics) == (True, True)
    for telemetry in (silent, spans, metrics, remote):
        telemetry.shutdown()
