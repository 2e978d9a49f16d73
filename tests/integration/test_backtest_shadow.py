"""``livectx backtest shadow``: a candidate beside the live fraud agent on a small live stream (real broker,
real Redis online store, the real agent loop), reporting agreement and metric deltas, producing nothing.

One attacked user has card-testing features in the online store (written in Feast's Redis layout by the
engine's writer); the live agent follows ``fraud`` = v1 (a trained model) and declines that user's tiny
payments. Shadowing v1 itself agrees on every payment; shadowing v2 (a constant 0.9: declines everything)
agrees exactly where the live agent declined.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from livectx_agents.example_fraud import run_fraud_agent
from livectx_backtest.cli import backtest
from livectx_backtest.example_fraud_model import save, train_fraud_model
from livectx_ingest.streaming.online_writer import FeastRedisWriter, Row

from livectx import serde
from livectx.features.online_reader import feature_store_identity
from livectx.kafka import producer
from livectx.models import registry
from livectx.redis_client import redis_client
from livectx.settings import Settings
from tests.example import Transaction, group_named

from ..unit.test_model_registry import constant_model
from .kafka_helpers import create_topic, read_all
from .test_fraud_agent_live_switch import models_topic

AT = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))  # this test's artifacts only
    return Settings()


def write_burst_features(settings: Settings, user: str) -> None:
    """The attacked user's online rows: 12 payments in 5 minutes from 9 IPs with 1 card (the engine's writer)."""
    project, eksv = feature_store_identity(settings.feature_repo)
    client = redis_client(settings)
    at = int(AT.timestamp() * 1000)
    rows = {
        "user_txn_5m": {"txn_count_5m": 12, "txn_amount_max_5m": 4.5},
        "user_txn_10m": {"distinct_ips_10m": 9, "distinct_cards_10m": 1},
        "user_txn_24h": {"distinct_merchants_24h": 1},
    }
    for name, values in rows.items():
        writer = FeastRedisWriter(client, project, group_named(name), eksv, ttl_seconds=600)
        full = {f.name: values.get(f.name) for f in group_named(name).features}
        assert writer.write([Row(user, at - 300_000, at, at, 1, True, full)], written_ms=int(time.time() * 1000)) == 1


def payment(n: int, user: str, amount: float, fraud: bool) -> Transaction:
    return Transaction(
        event_time=AT + timedelta(seconds=n), txn_id=f"{user}-t{n}", user_id=user, card_id=f"{user}-c",
        merchant_id="m0001", amount=amount, currency="EUR", ip=f"10.0.{n}.1", country="DE", is_fraud=fraud,
    )  # fmt: skip


def test_shadow_reports_agreement_beside_the_live_agent(isolated: Settings, unique: str, tmp_path: Path) -> None:
    models = models_topic(isolated, f"test.{unique}.models")
    txns = create_topic(isolated, f"test.{unique}.transactions", partitions=2)
    decisions = create_topic(isolated, f"test.{unique}.decisions")
    save(train_fraud_model(seed=1, events=20_000), tmp_path / "good.joblib")
    registry.register(isolated, "fraud", "v1", tmp_path / "good.joblib", feature_service="fraud_features", topic=models)
    registry.register(isolated, "fraud", "v2", constant_model(tmp_path / "v2.joblib", 0.9),
                      feature_service="fraud_features", topic=models, activate=False)  # fmt: skip
    attacked = f"{unique}-victim"
    write_burst_features(isolated, attacked)
    stream = [payment(n, attacked, 1.5, True) for n in range(10)]
    stream += [payment(n, f"{unique}-u{n}", 40.0 + n, False) for n in range(10, 30)]
    p = producer(isolated)
    for txn in stream:
        key, value, headers = serde.encode(txn)
        p.produce(txns, key=key, value=value, headers=headers)
    assert p.flush(30) == 0

    agent, _stats = run_fraud_agent(
        isolated, consumer_group=f"live-{unique}", worker_id=unique, source_topic=txns, decisions_topic=decisions,
        model_name="fraud", models_topic=models, until_caught_up=True,
    )  # fmt: skip
    assert agent.stats.decided == 30
    live_declines = agent.stats.declined
    assert agent.stats.tp >= 8 and agent.stats.fp == 0, agent.stats  # the online features made the difference
    decisions_before = len(read_all(isolated, decisions, 30))

    def shadow(model: str) -> dict:  # type: ignore[type-arg]
        args = ["shadow", "--model", model, "--live-model", "fraud", "--group", f"shadow-{unique}-{model}",
                "--topic", txns, "--decisions-topic", decisions, "--models-topic", models,
                "--until-caught-up", "--json"]  # fmt: skip
        result = CliRunner().invoke(backtest, args, obj={})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    same = shadow("fraud:v1")
    assert (same["scored"], same["live_decisions"], same["compared"], same["agree"]) == (30, 30, 30, 30)
    assert same["agreement"] == 1.0 and same["examples"] == [] and same["live_models"] == {"fraud:v1": 30}
    assert same["delta"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "flagged": 0.0}

    always = shadow("fraud:v2")
    assert always["compared"] == 30 and always["agree"] == live_declines
    assert always["agreement"] == pytest.approx(live_declines / 30, abs=1e-6)
    assert always["candidate_metrics"]["recall"] == 1.0 and always["candidate_metrics"]["flagged"] == 30
    assert always["delta"]["recall"] == pytest.approx(1.0 - agent.stats.recall, abs=1e-6)
    assert len(always["examples"]) == 10 and all(not e["label"] for e in always["examples"])
    # Never acting: the decisions topic holds the live agent's decisions only.
    assert len(read_all(isolated, decisions, decisions_before + 1, timeout_s=3)) == decisions_before
