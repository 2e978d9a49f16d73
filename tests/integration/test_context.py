"""get_context against the real Redis (Feast layout), pgvector and model; degradation, breakers, HTTP."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest
import redis
import uvicorn
from livectx_agents.context import AsyncContextClient, ContextClient, ContextConfig, ContextUnavailable
from livectx_agents.server import create_app

from livectx.features.online_reader import OnlineFeatureReader
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.stack.process import wait_until
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorFilter, VectorRecord
from livectx.vectors.watermark import IndexWatermark
from tests.example import group_named

TICKETS = [
    ("t1", "billing", "I was charged twice for the same order and need a refund."),
    ("t2", "shipping", "My parcel arrived crushed and the vase inside is broken."),
    ("t3", "technical", "The app crashes whenever I open the settings page."),
    ("t4", "shipping", "Tracking has not updated for a week, where is my package?"),
]


GENEROUS = ContextConfig(budget_ms=2000, features_timeout_ms=1000, vectors_timeout_ms=1500)


@pytest.fixture
def memory(settings: Settings, stack, embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_ctx_{uuid.uuid4().hex[:8]}")
    isolated = Settings()
    store = PgVectorStore.from_settings(isolated)
    store.ensure_index(embedder.name, embedder.dim)
    vectors = embedder.embed([t[2] for t in TICKETS])
    store.upsert([
        VectorRecord(
            id=f"support_ticket:{tid}", vector=v, text=text, source="support_ticket", tenant="acme",
            category=category, event_ms=1_700_000_000_000 + i, topic="livectx.tickets", partition=0, offset=i,
        )
        for i, ((tid, category, text), v) in enumerate(zip(TICKETS, vectors, strict=True))
    ])  # fmt: skip
    IndexWatermark(redis_client(isolated), isolated.vector.index).publish_status(
        3, 1_700_000_000_003, int(time.time() * 1000)
    )
    yield isolated
    store.drop()
    store.close()


def _client(
    settings: Settings,
    embedder,
    config: ContextConfig | None = None,
    search=None,
    reader=None,
) -> ContextClient:  # type: ignore[no-untyped-def]
    store = PgVectorStore.from_settings(settings)
    watermark = IndexWatermark(redis_client(settings), settings.vector.index)
    return ContextClient(
        (reader or OnlineFeatureReader.from_settings(settings)).read,
        search or (lambda v, k, where: store.search(v, k, where)),
        lambda text: embedder.embed([text])[0],
        watermark.status,
        config or GENEROUS,
    )


def _push_user(feature_store, user: str, event_ms: int) -> None:  # type: ignore[no-untyped-def]
    group = group_named("user_txn_5m")
    feature_store.write_to_online_store(
        group.name,
        pd.DataFrame({
            "user_id": [user], "event_timestamp": [datetime.fromtimestamp(event_ms / 1000, UTC)],
            "created_timestamp": [datetime.now(UTC)],
            "txn_count_5m": [7], "txn_amount_max_5m": [912.5], group.event_time_field: [event_ms],
            group.written_field: [event_ms + 5], group.window_end_field: [event_ms + 1000],
        }),
    )  # fmt: skip


def test_one_call_returns_features_similar_items_and_freshness(memory: Settings, feature_store, embedder) -> None:  # type: ignore[no-untyped-def]
    user = f"ctx-{uuid.uuid4().hex[:8]}"
    event_ms = int(time.time() * 1000) - 1500
    _push_user(feature_store, user, event_ms)
    client = _client(memory, embedder)
    try:
        context = client.get_context([user, "nobody"], "fraud_features", query_text=TICKETS[1][2], top_k=3)
    finally:
        client.close()
    assert context.degraded == [] and context.ok
    expected = feature_store.get_online_features(
        features=feature_store.get_feature_service("fraud_features"), entity_rows=[{"user_id": user}]
    ).to_dict()
    assert context.features[user]["txn_count_5m"] == expected["txn_count_5m"][0] == 7
    assert context.features[user]["txn_amount_max_5m"] == 912.5
    assert context.features["nobody"]["txn_count_5m"] == 0  # declared default: no events, count 0
    assert context.features["nobody"]["txn_amount_max_5m"] is None
    assert [h.id for h in context.similar][:1] == ["support_ticket:t2"] and len(context.similar) == 3
    age = context.freshness["features"][user]["user_txn_5m"]
    assert 1500 <= age < 60_000 and context.freshness["features"]["nobody"]["user_txn_5m"] is None
    assert context.freshness["vector_index"]["lag_records"] == 3
    search_only = _client(memory, embedder)
    try:
        only = search_only.get_context([], query_text="refund", top_k=4, filters=VectorFilter(categories=("shipping",)))
    finally:
        search_only.close()
    assert {h.id for h in only.similar} == {"support_ticket:t2", "support_ticket:t4"}


def test_a_slow_vector_store_degrades_within_budget_opens_the_breaker_and_recovers(memory: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    store = PgVectorStore.from_settings(memory)
    healthy, answered = threading.Event(), threading.Event()

    def search(vector, k, where):  # type: ignore[no-untyped-def]
        healthy.wait(30)  # a stalled store: holds the call until the test heals it
        try:
            return store.search(vector, k, where)
        finally:
            answered.set()

    # Only the vector part is made to stall; the feature part's timeout is one no loaded machine misses.
    config = ContextConfig(
        budget_ms=5000, features_timeout_ms=4000, vectors_timeout_ms=100, failure_threshold=2, reset_after_s=0.2
    )
    client = _client(memory, embedder, config, search=search)
    try:
        first = client.get_context(["u1"], "fraud_features", query_text="broken parcel")
        assert first.similar == [] and first.degraded == ["vectors: timed out after 100 ms"]
        assert not answered.is_set()  # the call returned on its budget while the store was still stuck
        assert first.features["u1"]["txn_count_5m"] == 0  # the other part still served
        client.get_context(["u1"], "fraud_features", query_text="broken parcel")
        assert client.breakers["vectors"].state == "open"
        skipped = client.get_context(["u1"], "fraud_features", query_text="broken parcel")
        assert skipped.degraded == ["vectors: circuit open (timed out after 100 ms)"]
        with pytest.raises(ContextUnavailable, match="vectors: circuit open"):
            client.get_context(["u1"], "fraud_features", query_text="broken parcel", strict=True)

        healthy.set()
        assert wait_until(lambda: client.breakers["vectors"].state == "half_open", 5, poll_s=0.02)
        recovered = client.get_context(["u1"], "fraud_features", query_text=TICKETS[1][2], budget_ms=3000)
        assert recovered.ok and recovered.similar[0].id == "support_ticket:t2"
        assert client.breakers["vectors"].state == "closed"
    finally:
        healthy.set()
        client.close()
        store.close()


def test_redis_down_gives_degraded_features_not_an_exception(memory: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    dead = redis.Redis(host="127.0.0.1", port=dead_port, socket_connect_timeout=0.2)
    reader = OnlineFeatureReader(dead)
    client = _client(memory, embedder, reader=reader)
    try:
        context = client.get_context(["u1", "u2"], "fraud_features", query_text=TICKETS[0][2], top_k=1)
    finally:
        client.close()
    # Refused connections (or redis-py's retries running past the part's timeout): degraded either way.
    assert len(context.degraded) == 1 and context.degraded[0].startswith(
        ("features: ConnectionError", "features: timed out")
    )
    assert client.breakers["features"].last_error
    assert context.features["u1"]["txn_count_5m"] == 0 and context.features["u2"]["txn_amount_sum_1h"] is None
    assert context.freshness["features"]["u1"]["user_txn_5m"] is None
    assert context.similar[0].id == "support_ticket:t1"  # the vector part is unaffected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_endpoint_over_a_real_socket(memory: Settings, feature_store, embedder) -> None:  # type: ignore[no-untyped-def]
    user = f"http-{uuid.uuid4().hex[:8]}"
    _push_user(feature_store, user, int(time.time() * 1000))
    app = create_app(AsyncContextClient(_client(memory, embedder)))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, 30, poll_s=0.02)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            ok = http.post(
                "/v1/context",
                json={"entities": [user], "feature_service": "fraud_features", "query_text": TICKETS[2][2], "top_k": 2},
            )
            assert ok.status_code == 200, ok.text
            body = ok.json()
            assert body["features"][user]["txn_count_5m"] == 7 and body["degraded"] == []
            assert body["similar"][0]["id"] == "support_ticket:t3" and len(body["similar"]) == 2
            assert set(body["freshness"]) == {"features", "newest_event_ms", "vector_index"}

            bad = http.post("/v1/context", json={"entities": [user], "top_k": 0})
            assert bad.status_code == 422 and bad.json()["error"] == "top_k: Input should be greater than or equal to 1"
            both = http.post("/v1/context", json={"query_text": "a", "query_vector": [0.1]})
            assert both.status_code == 422 and "not both" in both.json()["error"]
            unknown = http.post("/v1/context", json={"entities": [user], "feature_service": "nope"})
            assert unknown.status_code == 400 and "unknown feature service 'nope'" in unknown.json()["error"]
            assert http.get("/healthz").json()["breakers"] == {"features": "closed", "vectors": "closed"}
            # Warmed up before it accepted a call (uvicorn binds after start-up): the model's first pass is done.
            ready = http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            assert set(ready.json()["warm_up"]) == {"features", "vectors"}
            spec = http.get("/openapi.json").json()
            assert "/v1/context" in spec["paths"]
            assert {"entities", "query_text", "top_k", "budget_ms", "strict"} <= set(
                spec["components"]["schemas"]["ContextRequest"]["properties"]
            )
    finally:
        server.should_exit = True
        thread.join(10)
