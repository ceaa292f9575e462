"""OpenTelemetry for the gateway: one server span and one duration measurement per HTTP request.

Providers belong to the app (``app.state.telemetry``), not to the process-wide globals, so several apps (tests,
workers) never fight over them. With ``QALA_OTLP_ENDPOINT`` unset nothing is exported.

The span follows the stable HTTP semantic conventions: it is named ``{METHOD} {route template}`` (never the raw
path, which would explode cardinality and leak identifiers), continues the caller's W3C ``traceparent``, leaves
its status unset for 4xx and sets ``ERROR`` for 5xx. It carries ``url.query`` (values of credential-like
parameters redacted), ``server.address``/``server.port`` (from the Host header, as the conventions say; they are
telemetry only and never used to build links), ``client.address``/``client.port``, ``user_agent.original`` and
``network.protocol.version``. A handler that serves many operations under one template (the CKAN Action API) names
the operation by setting ``http.route`` on the current span to a concrete route of its known operations.

    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> telemetry = Telemetry.from_settings(Settings(), span_exporter=InMemorySpanExporter())
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import Settings

DURATION_METRIC = "http.server.request.duration"
# The buckets the semantic conventions advise for request durations, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
# Query parameters whose values are secrets somewhere in the hub's surface (Open311 api_key, OAuth forms).
SENSITIVE_QUERY_KEYS = frozenset({"api_key", "apikey", "access_token", "token", "client_secret", "client_assertion"})
REDACTED = "REDACTED"
_propagator = TraceContextTextMapPropagator()
_TRACEPARENT = b"traceparent"


@dataclass
class Telemetry:
    """The app's tracer and meter providers plus the instruments the middleware records into.

    ``exports_spans`` and ``exports_metrics`` say whether anything reads what is recorded: without an exporter the
    middleware still starts a span per request (its trace id goes into the audit log, and an incoming
    ``traceparent`` is continued) but skips the attributes and the duration measurement nobody could see.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exports_spans: bool = True
    exports_metrics: bool = True

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> Telemetry:
        """Providers for ``settings``; tests pass an in-memory exporter and reader."""
        resource = Resource.create({"service.name": settings.service_name})
        tracer_provider = TracerProvider(resource=resource)
        readers: list[MetricReader] = []
        if span_exporter is not None:
            tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        if metric_reader is not None:
            readers.append(metric_reader)
        if settings.otlp_endpoint:
            # Imported lazily: the exporter pulls in protobuf, which most deployments never need.
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

            base = settings.otlp_endpoint.rstrip("/")
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics")))
        view = View(instrument_name=DURATION_METRIC, aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=[view])
        exports_spans = span_exporter is not None or bool(settings.otlp_endpoint)
        return cls(tracer_provider, meter_provider, exports_spans=exports_spans, exports_metrics=bool(readers))

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("qala.gateway")

    def duration_histogram(self) -> Histogram:
        meter = self.meter_provider.get_meter("qala.gateway")
        return meter.create_histogram(DURATION_METRIC, unit="s", description="Duration of HTTP server requests.")

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def current_trace_id() -> str | None:
    """The hex trace id of the request being served, for the audit log; ``None`` outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def redact_query(query: str) -> str:
    """The raw query with the values of credential-like parameters replaced, order and encoding kept.

    >>> redact_query("service_code=pothole&api_key=s3cr3t")
    'service_code=pothole&api_key=REDACTED'
    """
    parts = []
    for part in query.split("&"):
        key, sep, _ = part.partition("=")
        parts.append(f"{key}{sep}{REDACTED}" if sep and key.lower() in SENSITIVE_QUERY_KEYS else part)
    return "&".join(parts)


def _host_and_port(host: str | None, scheme: str) -> tuple[str | None, int | None]:
    if not host:
        return None, None
    if host.startswith("["):  # [IPv6]:port
        address, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.rpartition(":") if ":" in host else (host, "", "")
    port = int(port_text) if port_text.isdigit() else {"http": 80, "https": 443}.get(scheme)
    return address or None, port


def _request_attributes(scope: Scope, headers: dict[str, str]) -> dict[str, str | int]:
    """The HTTP server span's request attributes from the ASGI scope (semantic conventions, stable HTTP)."""
    scheme = scope.get("scheme", "http")
    attributes: dict[str, str | int] = {"url.path": scope["path"], "url.scheme": scheme}
    query = scope.get("query_string", b"")
    if query:
        attributes["url.query"] = redact_query(query.decode("latin-1"))
    address, port = _host_and_port(headers.get("host"), scheme)
    if address:
        attributes["server.address"] = address
    if port:
        attributes["server.port"] = port
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
        attributes["client.port"] = client[1]
    agent = headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    version = scope.get("http_version")
    if version:
        attributes["network.protocol.version"] = version
    return attributes


def _incoming(headers: list[tuple[bytes, bytes]], observed: bool) -> tuple[dict[str, str], otel_context.Context]:
    """The request's headers as text (for the span's attributes, when anything is observed) and the context the
    caller's ``traceparent`` continues.

    Without a ``traceparent`` the propagator gives an empty context whatever else the carrier holds, so an
    unobserved request skips decoding every header into a carrier for it (~1.3 us a request)."""
    if observed or any(name == _TRACEPARENT for name, _ in headers):
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in headers}
        return carrier, _propagator.extract(carrier)
    return {}, otel_context.Context()


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


class TelemetryMiddleware:
    """Pure ASGI middleware, so the span is the current context for the whole request in the same task."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.tracer = telemetry.tracer
        self.tracer_provider = telemetry.tracer_provider
        self.duration = telemetry.duration_histogram()
        self.exports_spans = telemetry.exports_spans
        self.exports_metrics = telemetry.exports_metrics

    def _context_only(self, name: str, parent: otel_context.Context) -> trace.Span:
        """A span that records nothing, with the span context the SDK's tracer would give the server span: the
        parent's trace id or a new one, a new span id, the flags and trace state the provider's sampler decides.

        Without a span exporter the SDK's span was made for its trace id alone (the audit records and the
        ``traceparent`` sent on carry it), and making it, its attributes and its end cost ~22 us a request, a
        tenth of an authenticated GET; this span costs ~2."""
        provider = self.tracer_provider
        parent_context = trace.get_current_span(parent).get_span_context()
        inherited = parent_context is not None and parent_context.is_valid
        trace_id = parent_context.trace_id if inherited else provider.id_generator.generate_trace_id()
        if not inherited and provider.sampler is DEFAULT_ON:
            # What the SDK's default sampler answers for a span without a parent (its root sampler, ALWAYS_ON:
            # sampled, no trace state), without asking it (~1.4 us a request).
            decision, trace_state = Decision.RECORD_AND_SAMPLE, None
        else:
            sampled = provider.sampler.should_sample(parent, trace_id, name, SpanKind.SERVER, None, ())
            decision, trace_state = sampled.decision, sampled.trace_state
        flags = TraceFlags.SAMPLED if decision is Decision.RECORD_AND_SAMPLE else TraceFlags.DEFAULT
        random_id = (
            parent_context.trace_flags.random_trace_id if inherited else provider.id_generator.is_trace_id_random()
        )
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id,
            provider.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=trace_state,
        )
        return NonRecordingSpan(span_context)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        observed = self.exports_spans or self.exports_metrics
        carrier, parent = _incoming(scope["headers"], observed)
        if not observed:
            # Nothing reads the request's status, error or duration, and the span is _context_only's NonRecordingSpan,
            # whose set_status and end do nothing: the app sends straight to ``send``, without a wrapper per message.
            token = otel_context.attach(trace.set_span_in_context(self._context_only(method, parent), parent))
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        await self._observed(scope, receive, send, method=method, carrier=carrier, parent=parent)

    async def _observed(
        self, scope: Scope, receive: Receive, send: Send, *, method: str, carrier: dict[str, str], parent: Context
    ) -> None:
        """The request as something reads it: a span with its attributes, or a duration measurement, or both."""
        status_code = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        request_attributes = _request_attributes(scope, carrier)
        if self.exports_spans:
            span_attributes: dict[str, str | int] = {"http.request.method": method, **request_attributes}
            span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=span_attributes)
        else:  # metrics only: the span exists for its trace id alone, its attributes would reach no one
            span = self._context_only(method, parent)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        error: BaseException | None = None
        try:
            await self.app(scope, receive, recording_send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            otel_context.detach(token)
            failed = status_code >= 500 or error is not None
            kind = (type(error).__qualname__ if error is not None else str(status_code)) if failed else None
            named = getattr(span, "attributes", None) or {}
            route = named.get("http.route") or _route_template(scope)  # a handler may name its operation
            attributes: dict[str, str | int] = {
                "http.request.method": method,
                "http.response.status_code": status_code,
                "url.scheme": request_attributes["url.scheme"],
            }
            if "network.protocol.version" in request_attributes:
                attributes["network.protocol.version"] = request_attributes["network.protocol.version"]
            if route:
                attributes["http.route"] = route
            if kind is not None:
                attributes["error.type"] = kind
            if self.exports_spans:
                if route:
                    span.update_name(f"{method} {route}")
                span.set_attributes(
                    {name: attributes[name] for name in ("http.route", "error.type") if name in attributes}
                    | {"http.response.status_code": status_code}
                )
            if self.exports_metrics:
                self.duration.record(time.perf_counter() - started, attributes)
            if failed:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
