"""livectx.tracing without Kafka: headers carry a W3C traceparent, a batch span links to its records'
contexts (at most MAX_LINKS), a decision span is the child of its record's span, and with no endpoint
tracing stays off and touches nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from livectx import tracing


class Record:
    """The part of a confluent_kafka Message the helpers read."""

    def __init__(self, headers: list[tuple[str, bytes]] | None, offset: int = 0) -> None:
        self._headers, self._offset = headers, offset

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.disable()


def test_a_record_s_trace_runs_from_its_send_span_to_a_batch_link_and_a_decision(spans) -> None:  # type: ignore[no-untyped-def]
    headers = tracing.traced_headers("t", [("livectx-schema", b"s.v1")])
    assert headers is not None and headers[0] == ("livectx-schema", b"s.v1")
    value = dict(headers)[tracing.TRACEPARENT].decode()
    [send] = spans.get_finished_spans()
    assert value == f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}-{int(send.context.trace_flags):02x}"
    record = Record(headers)
    with tracing.batch_span("batch", [record, Record(None)], group="g"):
        pass
    with tracing.record_span("decide", record):
        decided = tracing.propagated([("livectx-schema", b"decision.v1")])
    _send, batch, decision = spans.get_finished_spans()
    [link] = batch.links
    assert (link.context.trace_id, link.context.span_id) == (send.context.trace_id, send.context.span_id)
    assert batch.attributes["livectx.traced_records"] == 1 and batch.attributes["messaging.batch.message_count"] == 2
    assert decision.context.trace_id == send.context.trace_id and decision.parent.span_id == send.context.span_id
    assert dict(decided)[tracing.TRACEPARENT].decode().split("-")[1:3] == [
        f"{decision.context.trace_id:032x}",
        f"{decision.context.span_id:016x}",
    ]  # the decision record continues the trace


def test_a_batch_links_at_most_max_links_records(spans) -> None:  # type: ignore[no-untyped-def]
    records = [Record(tracing.traced_headers("t", [])) for _ in range(tracing.MAX_LINKS + 5)]
    contexts = [tracing.context_of(r) for r in records[:3]]
    with tracing.batch_span("batch", records, contexts=contexts):
        pass
    assert len(spans.get_finished_spans()[-1].links) == tracing.MAX_LINKS


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARS:
        monkeypatch.delenv(name, raising=False)
    tracing.disable()
    assert tracing.configure() is False and not tracing.STATE.enabled
    headers = [("livectx-schema", b"x.v1")]
    assert tracing.traced_headers("t", headers) is headers  # nothing added, no span
    with tracing.batch_span("b", [object()]) as span:  # never touches the records while off
        assert span is None
    assert tracing.context_of(object()) is None
    assert tracing.propagated(headers) is headers


def test_the_endpoint_is_livectx_s_variable_first() -> None:
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://std:4318", "LIVECTX_OTEL_EXPORTER_OTLP_ENDPOINT": "http://l:4318"}
    assert tracing.otlp_endpoint(both) == "http://l:4318"
    assert tracing.otlp_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://std:4318"}) == "http://std:4318"
    assert tracing.otlp_endpoint({}) is None


def test_an_endpoint_turns_on_otlp_export_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real OTLP/HTTP receiver stand-in: the spans arrive as a protobuf POST at <endpoint>/v1/traces."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, str, int]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the http.server API names it
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], len(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LIVECTX_OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    tracing.disable()
    try:
        assert tracing.configure("livectx-test") is True
        assert tracing.traced_headers("t", []) != []
        assert tracing.flush()
    finally:
        if tracing.STATE.provider is not None:
            tracing.STATE.provider.shutdown()
        tracing.disable()
        server.shutdown()
    [(path, content_type, size)] = received
    assert path == "/v1/traces" and content_type == "application/x-protobuf" and size > 0
