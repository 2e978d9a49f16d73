"""Traces through Kafka headers: the W3C ``traceparent`` from the producer to the agent's decision.

``livectx produce`` starts a span per record and writes its context into the record's headers
(``traceparent``, W3C Trace Context, through OpenTelemetry's propagator). The feature engine and the
embedding worker work in micro-batches of thousands of records, so they open **one span per batch** with
**links** to the contexts of the traced records in it (at most :data:`MAX_LINKS`), instead of a span per
record; the agents decide record by record, so each decision is a span whose parent is the record's
context: one event's path is its producer span, the batch spans that link to it, and its decision.

Off unless configured: :func:`configure` installs an OTLP exporter only when
``LIVECTX_OTEL_EXPORTER_OTLP_ENDPOINT`` (or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``) is set, and
otherwise imports nothing of the SDK. While off, :data:`STATE.enabled` is false and every helper returns
before touching a record (one attribute check per batch in the workers, none per event), so tracing costs
nothing measurable. Tests install their own provider (an in-memory exporter) with :func:`use_provider`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
MAX_LINKS = 128  # the SDK's default span link limit: a batch links its first 128 traced records
ENDPOINT_VARS = ("LIVECTX_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass
class _State:
    enabled: bool = False
    tracer: Any = None
    provider: Any = None


STATE = _State()


def otlp_endpoint(environ: dict[str, str] | None = None) -> str | None:
    """The configured OTLP/HTTP endpoint (livectx's variable first), or None: tracing stays off."""
    env = os.environ if environ is None else environ
    return next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)


def configure(service_name: str = "livectx") -> bool:
    """Turn tracing on with an OTLP/HTTP exporter when an endpoint is configured. Returns whether it is on.

    Called once by the CLI before a command runs; a second call changes nothing."""
    if STATE.enabled:
        return True
    endpoint = otlp_endpoint()
    if endpoint is None:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        from livectx.errors import LivectxError

        raise LivectxError(
            "an OTLP endpoint is set but the OpenTelemetry SDK is missing: pip install opentelemetry-sdk "
            "opentelemetry-exporter-otlp-proto-http"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    # The standard variable names the collector's base URL; OTLP/HTTP traces go to <base>/v1/traces.
    url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    use_provider(provider)
    log.info("tracing on: spans go to %s", url)
    return True


def use_provider(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``; tests give one with an in-memory exporter)."""
    STATE.tracer = provider.get_tracer("livectx")
    STATE.provider = provider
    STATE.enabled = True


def flush(timeout_s: float = 10.0) -> bool:
    """Export the spans still buffered (the SDK also does so at exit). True when nothing is left."""
    return STATE.provider is None or bool(STATE.provider.force_flush(int(timeout_s * 1000)))


def disable() -> None:
    STATE.enabled, STATE.tracer, STATE.provider = False, None, None


def _carrier(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: v.decode("latin-1") for k, v in headers or () if k in (TRACEPARENT, TRACESTATE) and v is not None}


def _context_of(message: Any) -> Any:
    """The span context a record's headers carry, or None (an untraced record: no import, no parse)."""
    headers = message.headers()
    if not headers or not any(k == TRACEPARENT for k, _v in headers):
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = trace.get_current_span(TraceContextTextMapPropagator().extract(_carrier(headers))).get_span_context()
    return context if context.is_valid else None


def traced_headers(topic: str, headers: Sequence[tuple[str, bytes]] | None) -> list[tuple[str, bytes]] | None:
    """The producer's side: a ``send`` span for one record, its context appended to the record's headers.

    Returns ``headers`` untouched while tracing is off."""
    if not STATE.enabled:
        return headers  # type: ignore[return-value]
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    with STATE.tracer.start_as_current_span(
        f"{topic} send", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka",
                                                              "messaging.destination.name": topic}
    ):  # fmt: skip
        TraceContextTextMapPropagator().inject(carrier)
    return [*(h for h in headers or () if h[0] not in (TRACEPARENT, TRACESTATE)),
            *((k, v.encode("latin-1")) for k, v in carrier.items())]  # fmt: skip


def context_of(message: Any) -> Any:
    """A record's trace context while tracing is on (None otherwise, or for an untraced record): for a
    worker that batches its own records (the embedding worker) and links them later with :func:`batch_span`."""
    return _context_of(message) if STATE.enabled and message.error() is None else None


def propagated(headers: Sequence[tuple[str, bytes]] | None) -> list[tuple[str, bytes]] | None:
    """``headers`` plus the current span's ``traceparent`` (an agent's decision record continues the
    record's trace for whoever consumes the decisions). Returns ``headers`` untouched while tracing is off."""
    if not STATE.enabled:
        return headers  # type: ignore[return-value]
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return [*(h for h in headers or () if h[0] not in (TRACEPARENT, TRACESTATE)),
            *((k, v.encode("latin-1")) for k, v in carrier.items())]  # fmt: skip


@contextlib.contextmanager
def batch_span(
    name: str, messages: Sequence[Any] = (), contexts: Iterable[Any] = (), **attributes: Any
) -> Iterator[Any]:
    """A worker's micro-batch: one span linked to the contexts of its traced records, read from
    ``messages``' headers or given as ``contexts`` (from :func:`context_of`). None while tracing is off."""
    if not STATE.enabled:
        yield None
        return
    from opentelemetry.trace import Link, SpanKind

    links = [Link(c) for c in contexts if c is not None][:MAX_LINKS]
    for message in messages:
        if len(links) >= MAX_LINKS:
            break
        if message.error() is None:
            context = _context_of(message)
            if context is not None:
                links.append(Link(context))
    count = len(messages) or attributes.pop("records", 0)
    attributes = {**attributes, "messaging.batch.message_count": count, "livectx.traced_records": len(links)}
    with STATE.tracer.start_as_current_span(name, kind=SpanKind.CONSUMER, links=links, attributes=attributes) as span:
        yield span


@contextlib.contextmanager
def record_span(name: str, message: Any, **attributes: Any) -> Iterator[Any]:
    """One record's processing (an agent's decision), a child of the context its headers carry."""
    if not STATE.enabled:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    context = _context_of(message)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(context)) if context is not None else None
    where = {"messaging.destination.name": message.topic(), "messaging.kafka.offset": message.offset(),
             "messaging.destination.partition.id": str(message.partition())}  # fmt: skip
    with STATE.tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes={**where, **attributes}
    ) as span:
        yield span
