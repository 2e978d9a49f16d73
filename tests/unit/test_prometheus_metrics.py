"""The Prometheus metrics: dead-letter reasons as low-cardinality kinds (from the real decoder's reasons),
the engine's and the context client's metrics fed from their callbacks, and ``/metrics`` served."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pytest
from livectx_agents.context import ContextClient, ContextConfig
from livectx_ingest.streaming.engine_metrics import EngineMetrics
from prometheus_client import REGISTRY

from livectx import serde
from livectx.errors import SchemaError
from livectx.features.incremental import WindowRow
from livectx.prometheus import degraded_reason, reason_kind, serve_metrics
from tests.example import REPO, Transaction

SERVICE = "fraud_features"


def _reason(value: bytes | None, record_ms: int | None = None) -> str:
    try:
        event = serde.decode(Transaction, value)
        serde.check_event_time(Transaction, event.event_time_ms, record_ms)
    except SchemaError as exc:
        return str(exc)
    raise AssertionError("decoded")


def _payment(**change: object) -> dict:
    body = {"event_time": "2026-03-01T10:00:00Z", "txn_id": "t1", "user_id": "u1", "card_id": "c1",
            "merchant_id": "m1", "amount": 10.0, "currency": "EUR", "ip": "10.0.0.1", "country": "DE"}  # fmt: skip
    return {**body, **change}


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (lambda: _reason(None), "null_record"),
        (lambda: _reason(b"\xff not json"), "malformed"),
        (lambda: _reason(b"[1, 2]"), "malformed"),
        (lambda: _reason(json.dumps(_payment()).replace("10.0", "Infinity").encode()), "non_finite"),
        (lambda: _reason(json.dumps(_payment(amount="ten")).encode()), "schema_violation"),
        (lambda: _reason(json.dumps({k: v for k, v in _payment().items() if k != "txn_id"}).encode()),
         "schema_violation"),
        (lambda: _reason(json.dumps(_payment(event_time="2099-01-01T00:00:00Z")).encode(),
                         int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)), "implausible_time"),
    ],
)  # fmt: skip
def test_dead_letter_reasons_map_to_a_few_kinds(reason, kind: str) -> None:  # type: ignore[no-untyped-def]
    assert reason_kind(reason()) == kind


def test_the_engine_metrics_observe_each_row_and_set_lag_per_partition() -> None:
    events = [0]
    metrics = EngineMetrics("g-unit", lambda: events[0])
    before = REGISTRY.get_sample_value("livectx_feature_freshness_seconds_count", {"view": "v-unit"}) or 0
    events[0] = 42
    rows = [WindowRow(0, 10, 1_000, {}), WindowRow(0, 10, 1_900, {})]
    metrics.written({"v-unit": rows}, visible_ms=2_000, seconds=0.004)
    value = REGISTRY.get_sample_value
    assert value("livectx_feature_freshness_seconds_count", {"view": "v-unit"}) == before + 2
    assert value("livectx_feature_freshness_seconds_sum", {"view": "v-unit"}) == pytest.approx(1.1)
    assert value("livectx_events_processed_total", {"group": "g-unit"}) == 42
    assert value("livectx_checkpoint_rows_total", {"group": "g-unit"}) == 2
    assert metrics.lag([("t", 0, 5, 9), ("t", 1, 7, 7)]) == 4
    assert value("livectx_consumer_lag_records", {"group": "g-unit", "topic": "t", "partition": "0"}) == 4


def test_context_calls_export_latency_by_part_and_degraded_answers_by_kind() -> None:
    release = threading.Event()

    def stuck(*_args):  # type: ignore[no-untyped-def]
        release.wait(10)
        return []

    client = ContextClient(
        lambda entities, _s: {g.event_time_field: [None] * len(entities) for g in REPO.service_groups(SERVICE)}
        | {f.name: [None] * len(entities) for g in REPO.service_groups(SERVICE) for f in g.features},
        stuck, lambda _t: np.zeros(3), config=ContextConfig(budget_ms=20),
        services={SERVICE: REPO.service_groups(SERVICE)}, memory_sources={},
    )  # fmt: skip
    labels = {"part": "vectors", "reason": "timeout"}
    before = REGISTRY.get_sample_value("livectx_context_degraded_total", labels) or 0
    try:
        context = client.get_context(["u1"], SERVICE, query_text="x")
    finally:
        release.set()
        client.close()
    assert degraded_reason(context.degraded[0]) == "timeout"
    assert REGISTRY.get_sample_value("livectx_context_degraded_total", labels) == before + 1
    assert REGISTRY.get_sample_value("livectx_context_part_seconds_count", {"part": "features"}) >= 1
    assert REGISTRY.get_sample_value("livectx_circuit_breaker_open", {"part": "vectors"}) == 0


def test_metrics_are_served_over_http() -> None:
    assert serve_metrics(0) is None  # 0: no endpoint
    server = serve_metrics(_free_port())
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
    assert "# TYPE livectx_feature_freshness_seconds histogram" in body
    assert "# TYPE livectx_dead_letters_total counter" in body


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_fraud_agent_exports_the_model_version_it_decides_with() -> None:
    from dataclasses import dataclass

    from livectx_agents.example_fraud import FraudAgent

    @dataclass
    class Named:
        name: str
        feature_service: str = SERVICE
        threshold: float | None = None

        def score(self, _features, _amount):  # type: ignore[no-untyped-def]
            return 0.0, []

    def in_use(version: str) -> float | None:
        return REGISTRY.get_sample_value(
            "livectx_model_version_info", {"agent": "fraud", "model": "fraud-unit", "version": version}
        )

    agent = FraudAgent(None, Named("fraud-unit:v1"))  # type: ignore[arg-type]
    assert in_use("v1") == 1
    agent.use(Named("fraud-unit:v2"), "switched")
    assert in_use("v2") == 1 and in_use("v1") is None


def test_observe_many_counts_what_observe_would_value_by_value() -> None:
    """A checkpoint's rows go into a histogram in one pass: the same buckets (a value on a bound is in
    that bound's bucket), count and sum as one ``observe`` per value; and a client laid out otherwise
    falls back to ``observe``."""
    from prometheus_client import CollectorRegistry, Histogram

    from livectx.prometheus import FRESHNESS_BUCKETS, observe_many

    rng = np.random.default_rng(3)
    values = [*FRESHNESS_BUCKETS, 0.0, 1e6, *rng.exponential(0.2, 500).tolist(), *rng.uniform(0, 400, 100).tolist()]
    samples = []
    for bulk in (False, True):
        registry = CollectorRegistry()
        # one name each: where the client keeps values per metric name (its multiprocess mode), two
        # histograms of one name would share their counts
        name = f"h_{'bulk' if bulk else 'plain'}_seconds"
        histogram = Histogram(name, "h", ["view"], buckets=FRESHNESS_BUCKETS, registry=registry)
        child = histogram.labels("v")
        if bulk:
            observe_many(child, values[:300])
            observe_many(child, values[300:])
            observe_many(child, [])
        else:
            for value in values:
                child.observe(value)
        samples.append(
            {
                (s.name.replace(name, "h"), s.labels.get("le")): s.value
                for m in registry.collect()
                for s in m.samples
                if not s.name.endswith("_created")
            }
        )
    plain, bulk = samples
    assert plain.keys() == bulk.keys()
    for key, value in plain.items():
        assert bulk[key] == pytest.approx(value, rel=1e-12), key
    assert plain[("h_count", None)] == len(values)

    class Plain:  # a histogram child without the internals observe_many reads
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    other = Plain()
    observe_many(other, [0.5, 2.0])
    assert other.seen == [0.5, 2.0]
