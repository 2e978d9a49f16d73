"""The fraud agent follows the model registry live: v1 -> v2 without a restart, retired -> the rules.

A real broker carries the registry (a compacted topic unique to the test), the transactions and the
decisions; the agent runs its real transactional loop on a thread. Each switch is awaited on the agent's
own condition (bounded), then proven by the next decision on the decisions topic: which version made it,
and what it decided (v1 approves everything, v2 declines everything, the rules approve a lone payment).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from livectx_agents.example_fraud import open_fraud_agent
from livectx_agents.loop import TransactionalLoop

from livectx import serde
from livectx.events import Decision
from livectx.kafka import producer
from livectx.models import UnknownModelError, registry
from livectx.settings import Settings
from livectx.topics import TopicSpec
from tests.example import Transaction

from ..unit.test_model_registry import constant_model
from .kafka_helpers import create_topic, read_all

COMPACTED = {"cleanup.policy": "compact", "delete.retention.ms": "3600000", "min.compaction.lag.ms": "0"}


def models_topic(settings: Settings, name: str, **config: str) -> str:
    from livectx.kafka import admin_client
    from livectx.topics import apply

    apply(admin_client(settings), [TopicSpec(name, 1, {**COMPACTED, **config})])
    return name


def payment(txn_id: str, minute: int) -> Transaction:
    return Transaction(
        event_time=datetime(2026, 4, 1, 12, minute, tzinfo=UTC),
        txn_id=txn_id,
        user_id=f"user-{txn_id}",
        card_id="card-1",
        merchant_id="m-1",
        amount=42.0,
        currency="EUR",
        ip="10.0.0.1",
        country="DE",
    )


def send(settings: Settings, topic: str, txn: Transaction) -> None:
    p = producer(settings)
    key, value, headers = serde.encode(txn)
    p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0


def decision_for(settings: Settings, topic: str, txn: Transaction, decided_before: int) -> Decision:
    """The decision on ``txn``: waits (bounded) until the topic holds ``decided_before + 1`` decisions."""
    records = read_all(settings, topic, decided_before + 1)
    found = [d for d in (serde.decode(Decision, m.value()) for m in records) if d.entity_id == txn.txn_id]
    assert len(found) == 1, f"{len(records)} decisions read, none (or several) for {txn.txn_id}"
    return found[0]  # type: ignore[return-value]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))  # artifacts of this test only
    return Settings()


def test_agent_switches_to_v2_live_and_falls_back_when_retired(isolated: Settings, unique: str, tmp_path: Path) -> None:
    models = models_topic(isolated, f"test.{unique}.models")
    txns = create_topic(isolated, f"test.{unique}.transactions")
    decisions = create_topic(isolated, f"test.{unique}.decisions")
    registry.register(
        isolated,
        "fraud",
        "v1",
        constant_model(tmp_path / "v1.joblib", 0.1),
        feature_service="fraud_features",
        topic=models,
    )

    agent, close = open_fraud_agent(isolated, decisions_topic=decisions, model_name="fraud", models_topic=models)
    loop = TransactionalLoop(
        isolated, name="fraud", topics=[txns], consumer_group=f"test-{unique}-fraud", worker_id=unique,
        handle=agent.handle, batch_size=50,
    )  # fmt: skip
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(loop, failure), daemon=True)
    thread.start()
    try:
        assert agent.scorer.name == "fraud:v1", "the agent starts on the active version"
        first = payment(f"{unique}-a", 1)
        send(isolated, txns, first)
        d1 = decision_for(isolated, decisions, first, 0)
        assert (d1.model, d1.action) == ("fraud:v1", "approve")

        registry.register(
            isolated,
            "fraud",
            "v2",
            constant_model(tmp_path / "v2.joblib", 0.9),
            feature_service="fraud_features",
            topic=models,
        )
        assert agent.wait_for_scorer("fraud:v2", timeout_s=30), f"still on {agent.scorer.name}"
        assert thread.is_alive() and not failure, "switched without a restart"
        second = payment(f"{unique}-b", 2)
        send(isolated, txns, second)
        d2 = decision_for(isolated, decisions, second, 1)
        assert (d2.model, d2.action) == ("fraud:v2", "decline")
        assert d2.score == pytest.approx(0.9)

        registry.retire(isolated, "fraud", topic=models)
        assert agent.wait_for_scorer("rules:card-testing", timeout_s=30), f"still on {agent.scorer.name}"
        third = payment(f"{unique}-c", 3)
        send(isolated, txns, third)
        d3 = decision_for(isolated, decisions, third, 2)
        assert (d3.model, d3.action) == ("rules:card-testing", "approve")
    finally:
        loop.stop()
        thread.join(30)
        close()
    assert not failure, failure
    assert agent.stats.decided == 3 and agent.stats.declined == 1

    # A newly started agent does not see the retired model; its versions stay resolvable for backtests.
    fresh, close_fresh = open_fraud_agent(isolated, decisions_topic=decisions, model_name="fraud", models_topic=models)
    try:
        assert fresh.scorer.name == "rules:card-testing"
    finally:
        close_fresh()
    with pytest.raises(UnknownModelError, match="no active version"):
        registry.resolve(isolated, "fraud", topic=models)
    assert registry.resolve(isolated, "fraud:v1", topic=models).version == "v1"
    assert registry.resolve(isolated, "fraud:v2", topic=models).version == "v2"


def _run(loop: TransactionalLoop, failure: list[BaseException]) -> None:
    try:
        loop.run()
    except BaseException as exc:  # surfaced by the test after join
        failure.append(exc)
