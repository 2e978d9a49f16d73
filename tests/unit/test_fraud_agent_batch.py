"""The fraud agent decides a consumed batch at once (one context read, one model call) and publishes each
decision as it would one at a time; a record that does not decode is dead-lettered, the rest decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.example_fraud import FraudAgent, ModelScorer
from livectx_agents.loop import DeadLetter

from livectx import serde
from livectx.events import Decision
from tests.example import FRAUD_MODEL_FEATURES, Transaction

START = datetime(2026, 3, 1, tzinfo=UTC)


class _Model:
    """``predict_proba`` from the row's distinct IPs and amount; counts its calls and rows."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_proba(self, rows: list[list[float]]) -> np.ndarray:
        self.calls.append(len(rows))
        ips = FRAUD_MODEL_FEATURES.index("distinct_ips_10m")
        p = np.array([0.9 if r[ips] >= 3 and r[-1] < 10 else 0.1 for r in rows])
        return np.column_stack([1 - p, p])


class _Record:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "payments"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def headers(self) -> None:
        return None


class _Producer:
    def __init__(self) -> None:
        self.sent: list[Decision] = []

    def produce(self, topic: str, key: bytes, value: bytes, headers: Any = None) -> None:
        self.sent.append(serde.decode(Decision, value))


def _agent(features: dict[str, dict[str, Any]], reads: list[list[str]]) -> tuple[FraudAgent, _Model]:
    class Columns(dict):  # type: ignore[type-arg]
        """The online read's columns: a feature the fake does not serve, or a freshness column, is missing."""

        def __missing__(self, column: str) -> list[Any]:
            return [features.get(e, {}).get(column) for e in self["user_id"]]

    def read(entities: list[str], _service: str) -> dict[str, list[Any]]:
        reads.append(list(entities))
        return Columns(user_id=list(entities))

    context = ContextClient(read, lambda *_a: [], lambda _t: None, config=ContextConfig(budget_ms=10_000))  # type: ignore[arg-type]
    model = _Model()
    return FraudAgent(context, ModelScorer(model, name="fraud:unit"), budget_ms=10_000), model


def _payment(n: int, user: str, amount: float) -> Transaction:
    return Transaction(
        event_time=START + timedelta(seconds=n), txn_id=f"t{n}", user_id=user, card_id="c1", merchant_id="m1",
        amount=amount, currency="EUR", ip=f"10.0.0.{n}", country="DE", is_fraud=amount < 10,
    )  # fmt: skip


def test_a_batch_is_decided_with_one_context_read_and_one_model_call_as_one_at_a_time() -> None:
    features = {"u1": {"distinct_ips_10m": 5}, "u2": {"distinct_ips_10m": 1}}
    payments = [_payment(0, "u1", 2.0), _payment(1, "u2", 2.0), _payment(2, "u1", 50.0), _payment(3, "u1", 3.0)]
    records = [_Record(serde.encode(p)[1], offset=i) for i, p in enumerate(payments)]
    reads: list[list[str]] = []
    agent, model = _agent(features, reads)
    producer = _Producer()
    agent.prepare(records)
    for record in records:
        agent.handle(record, producer)  # type: ignore[arg-type]
    assert reads == [["u1", "u2"]] and model.calls == [4]  # each user once, one matrix
    alone_reads: list[list[str]] = []
    alone, _ = _agent(features, alone_reads)
    expected = [alone.decide(p, f"payments-0-{i}") for i, p in enumerate(payments)]
    assert len(alone_reads) == 4
    assert [(d.entity_id, d.action, d.score, d.decision_id) for d in producer.sent] == [
        (d.entity_id, d.action, d.score, d.decision_id) for d in expected
    ]
    assert [d.action for d in producer.sent] == ["decline", "approve", "approve", "decline"]
    assert all(d.degraded == [] for d in producer.sent)
    assert (agent.stats.decided, agent.stats.tp, agent.stats.fn, agent.stats.tn) == (4, 2, 1, 1)


def test_a_record_that_does_not_decode_is_dead_lettered_and_the_rest_of_its_batch_decided() -> None:
    good = _payment(0, "u1", 2.0)
    records = [_Record(b"{not json", 0), _Record(serde.encode(good)[1], 1)]
    agent, model = _agent({"u1": {"distinct_ips_10m": 4}}, [])
    producer = _Producer()
    agent.prepare(records)
    with pytest.raises(DeadLetter):
        agent.handle(records[0], producer)  # type: ignore[arg-type]
    agent.handle(records[1], producer)  # type: ignore[arg-type]
    assert [d.entity_id for d in producer.sent] == ["t0"] and producer.sent[0].action == "decline"
    assert model.calls == [1]


def test_a_large_batch_reads_its_users_in_chunks_and_scores_once() -> None:
    from livectx_agents.example_fraud import CONTEXT_CHUNK

    reads: list[list[str]] = []
    agent, model = _agent({}, reads)
    payments = [_payment(n, f"u{n}", 20.0) for n in range(CONTEXT_CHUNK * 2 + 5)]
    decisions = agent.decide_many(payments, [f"payments-0-{n}" for n in range(len(payments))])
    assert [len(r) for r in reads] == [CONTEXT_CHUNK, CONTEXT_CHUNK, 5] and model.calls == [len(payments)]
    assert [d.entity_id for d in decisions] == [p.txn_id for p in payments]


def test_a_record_outside_the_prepared_batch_is_decided_alone() -> None:
    agent, model = _agent({}, [])
    producer = _Producer()
    agent.prepare([])
    agent.handle(_Record(serde.encode(_payment(5, "u9", 20.0))[1], 9), producer)  # type: ignore[arg-type]
    assert [d.action for d in producer.sent] == ["approve"] and model.calls == [1]
