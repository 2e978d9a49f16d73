"""One event's path as a trace, on the real broker, Redis and Postgres: ``livectx produce``'s records carry
a W3C ``traceparent`` header; the feature engine's and the embedding worker's batch spans link to the
records they applied; the fraud agent's decision on a payment is a child of that payment's producer span.
Spans go to an in-memory exporter (what an OTLP exporter would send)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from livectx import tracing
from livectx.produce import produce_scenario
from livectx.settings import Settings
from tests.example import LOGINS, TEXT_SOURCES, TICKETS, TRANSACTIONS

from .engine_helpers import TXN_GROUPS
from .kafka_helpers import create_topic, read_all


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.disable()
        provider.shutdown()


def _linked(batch: Any, send: Any) -> bool:
    return any(
        link.context.trace_id == send.context.trace_id and link.context.span_id == send.context.span_id
        for link in batch.links
    )


def test_a_payment_is_traced_from_producer_through_the_engine_to_the_decision(  # type: ignore[no-untyped-def]
    settings: Settings, feature_store, unique: str, spans
) -> None:
    from livectx_agents.example_fraud import run_fraud_agent
    from livectx_ingest.streaming.worker import run_features_worker

    payments = create_topic(settings, f"test.{unique}.txn")
    logins = create_topic(settings, f"test.{unique}.logins")
    decisions = create_topic(settings, f"test.{unique}.decisions")
    dlq = create_topic(settings, f"test.{unique}.dlq")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    produced = produce_scenario(settings, "fraud", count=40, seed=7, start=start,
                                topic_map={TRANSACTIONS: payments, LOGINS: logins})  # fmt: skip
    assert produced.per_topic.get(payments, 0) > 0
    run_features_worker(settings, groups=TXN_GROUPS, consumer_group=f"trace-{unique}", worker_id=unique,
                        topic_map={TRANSACTIONS: payments}, dead_letter_topic=dlq, write_offline=False,
                        until_caught_up=True, prometheus=False)  # fmt: skip
    run_fraud_agent(settings, consumer_group=f"trace-fraud-{unique}", worker_id=unique, source_topic=payments,
                    decisions_topic=decisions, until_caught_up=True)  # fmt: skip

    finished = spans.get_finished_spans()
    sends = [s for s in finished if s.name == f"{payments} send"]
    batches = [s for s in finished if s.name == "livectx.engine batch"]
    decided = [s for s in finished if s.name == "livectx.fraud decide"]
    assert len(sends) == produced.per_topic[payments]
    assert len({s.context.trace_id for s in sends}) == len(sends)  # every record starts its own trace
    assert len(decided) == len(sends)
    for send in sends:  # each payment: one trace from its producer span to its decision
        [decision] = [d for d in decided if d.context.trace_id == send.context.trace_id]
        assert decision.parent is not None and decision.parent.span_id == send.context.span_id
        assert any(_linked(batch, send) for batch in batches), "no engine batch links to the record"
    assert all(b.attributes["livectx.consumer_group"] == f"trace-{unique}" for b in batches)
    # The decision records continue the trace: their traceparent is the decision span's.
    spans_by_id = {d.context.span_id: d for d in decided}
    records = read_all(settings, decisions, len(decided))
    assert len(records) == len(decided)
    for record in records:
        _version, trace_id, span_id, _flags = dict(record.headers())[tracing.TRACEPARENT].decode().split("-")
        decision = spans_by_id[int(span_id, 16)]
        assert decision.context.trace_id == int(trace_id, 16)


def test_a_ticket_is_linked_from_its_producer_span_to_the_embedding_batch(  # type: ignore[no-untyped-def]
    settings: Settings, stack, embedder, unique: str, spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from livectx_ingest.embeddings.worker import EmbeddingWorker

    from livectx.vectors.pgvector_store import PgVectorStore

    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    isolated = Settings()
    tickets = create_topic(isolated, f"test.{unique}.tickets")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    produce_scenario(isolated, "support", count=12, seed=3, start=start, topic_map={TICKETS: tickets})
    try:
        EmbeddingWorker(isolated, consumer_group=f"trace-emb-{unique}", sources=[TEXT_SOURCES[TICKETS]],
                        topic_map={TICKETS: tickets}, embedder=embedder).run(until_caught_up=True)  # fmt: skip
    finally:
        store = PgVectorStore.from_settings(isolated)
        store.drop()
        store.close()
    finished = spans.get_finished_spans()
    sends = [s for s in finished if s.name == f"{tickets} send"]
    batches = [s for s in finished if s.name == "livectx.embeddings batch"]
    assert sends and batches
    assert all(any(_linked(batch, send) for batch in batches) for send in sends)
    assert sum(b.attributes["livectx.traced_records"] for b in batches) == len(sends)
