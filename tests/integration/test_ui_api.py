"""The dashboard's JSON on the real stack, for what the browser test does not cover: the vector index's
watermark per partition against the log end, the registry's versions with the active one, the model version
a running agent process reports on its ``/metrics``, topic end offsets, and the entity inspector's similar
items (the entity's own memory, found by meaning)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from livectx.kafka import producer
from livectx.models import registry
from livectx.prometheus import serve_metrics
from livectx.prometheus_targets import registered_target
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.ui.app import create_app
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorRecord
from livectx.vectors.watermark import IndexWatermark

from ..unit.test_model_registry import constant_model
from .kafka_helpers import create_topic
from .test_fraud_agent_live_switch import models_topic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(client: TestClient, ready: Callable[[dict[str, Any]], bool], timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get("/api/dashboard").json()
        if body.get("updated_ms") and ready(body):
            return body
        assert time.monotonic() < deadline, {k: v for k, v in body.items() if k != "pipelines"}
        time.sleep(0.1)  # polling the dashboard's refresh, with a deadline


@pytest.fixture
def isolated(settings: Settings, stack, unique: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Settings with a vector index of the test's own (its table and watermark removed afterwards)."""
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    own = Settings()
    yield own
    redis_client(own).delete(IndexWatermark(redis_client(own), own.vector.index).key)
    store = PgVectorStore.from_settings(own)
    store.drop()
    store.close()


def test_watermark_models_in_use_and_similar_items(  # type: ignore[no-untyped-def]
    isolated: Settings, feature_store, embedder, unique: str, tmp_path: Path
) -> None:
    from livectx_agents.example_fraud import FraudAgent

    texts = create_topic(isolated, f"test.{unique}.texts", partitions=2)
    p = producer(isolated)
    for partition, count in ((0, 3), (1, 2)):
        for n in range(count):
            p.produce(texts, key=f"k{n}".encode(), value=b"{}", partition=partition)
    assert p.flush(30) == 0
    IndexWatermark(redis_client(isolated), isolated.vector.index).advance({(texts, 0): 2, (texts, 1): 2})
    models = models_topic(isolated, f"test.{unique}.models")
    for version in ("v1", "v2"):
        registry.register(isolated, "fraud", version, constant_model(tmp_path / f"{version}.joblib", 0.1),
                          feature_service="fraud_features", topic=models)  # fmt: skip

    class Named:  # the agent's scorer, as registered: the agent exports the version it decides with
        name, feature_service, threshold = f"fraud-{unique}:v2", "fraud_features", None

    FraudAgent(None, Named())  # type: ignore[arg-type]
    server = serve_metrics(_free_port())
    labels = {"job": "livectx-agent-fraud", "consumer_group": f"ui-{unique}", "worker_id": unique}
    user = f"{unique}-u"
    text = "the parcel arrived with a broken screen"
    store = PgVectorStore.from_settings(isolated)
    store.ensure_index(embedder.name, embedder.dim)
    store.upsert([VectorRecord(f"ticket:{unique}", embedder.embed([text])[0], text, "support_ticket", user,
                               "shipping", int(time.time() * 1000), texts, 0, 0)])  # fmt: skip
    store.close()
    try:
        with (
            registered_target(isolated, f"ui-test-{unique}", server.server_port, labels),
            TestClient(create_app(isolated, interval_s=0.3, models_topic=models)) as client,
        ):
            body = _until(client, lambda b: any(r.get("model") == f"fraud-{unique}" for r in
                                                b["metrics"].get("models_in_use", [])))  # fmt: skip
            similar = client.get("/api/entity", params={"service": "fraud_features", "id": user, "q": "screen broken"})
            unknown = client.get("/api/entity", params={"service": "nope", "id": user})
    finally:
        server.shutdown()
    assert body["watermark"]["partitions"] == [
        {"topic": texts, "partition": 0, "searchable": 2, "end": 3, "lag": 1},
        {"topic": texts, "partition": 1, "searchable": 2, "end": 2, "lag": 0},
    ]
    versions = [(v["name"], v["version"], v["active"]) for v in body["models"]["versions"]]
    assert versions == [("fraud", "v1", False), ("fraud", "v2", True)]
    [in_use] = [r for r in body["metrics"]["models_in_use"] if r["model"] == f"fraud-{unique}"]
    assert (in_use["agent"], in_use["version"], in_use["job"], in_use["worker_id"]) == (
        "fraud", "v2", "livectx-agent-fraud", unique
    )  # fmt: skip
    assert [(t["end_offset"], t["partitions"]) for t in body["pipelines"]["topics"] if t["topic"] == texts] == [(5, 2)]
    entity = similar.json()
    assert [h["id"] for h in entity["similar"]] == [f"ticket:{unique}"] and entity["similar"][0]["text"] == text
    assert set(entity["features"]) >= {"txn_count_5m", "login_failures_5m"}
    assert all(v is None for v in entity["features"].values())  # a user with no events: nothing online
    assert unknown.status_code == 400 and "unknown feature service 'nope'" in unknown.json()["error"]
