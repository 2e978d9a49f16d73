"""The fraud agent: score each payment from its user's streaming features, decide within a budget.

For each transaction on ``livectx.transactions``: ``get_context`` reads the user's ``fraud_features``
(windowed counts, distinct IPs and cards, amounts, failed logins: kept fresh by the feature engine); a
scorer turns them into a fraud probability; the agent declines above a threshold and approves otherwise.
The decision goes to ``livectx.decisions`` in the same Kafka transaction as the input offsets.

Scorers: a trained model when one is configured (any object with ``predict_proba`` over
:data:`MODEL_FEATURES`, loaded with joblib; the model registry of a later issue will supply it), else
:class:`CardTestingRules`, which targets the card-testing pattern: a burst of payments from many distinct
IPs inside minutes. When features are unavailable (degraded context) the rules see the declared defaults
and approve: a fraud check that fails open, reported in the decision's ``degraded`` field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from livectx import serde, topics
from livectx.errors import SchemaError
from livectx.events import Decision, Transaction
from livectx.features.catalog import FRAUD_MODEL_FEATURES
from livectx.settings import Settings
from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.idempotency import idempotency_key
from livectx_agents.loop import DeadLetter, run_agent

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)

MODEL_FEATURES = FRAUD_MODEL_FEATURES


class Scorer(Protocol):
    name: str

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]: ...


@dataclass(frozen=True)
class CardTestingRules:
    """Fallback rules: tiny payments in a burst from many distinct IPs within minutes is card testing."""

    name: str = "rules:card-testing"
    min_ips_10m: int = 3
    min_txns_5m: int = 3
    max_test_amount: float = 10.0  # card testers probe with tiny amounts

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]:
        ips = features.get("distinct_ips_10m") or 0
        count = features.get("txn_count_5m") or 0
        failures = features.get("login_failures_5m") or 0
        reasons = []
        score = 0.0
        if ips >= self.min_ips_10m and count >= self.min_txns_5m:
            burst = f"{count} payments in 5 min from {ips} distinct IPs in 10 min"
            if amount <= self.max_test_amount:
                score = max(score, 0.9)
                reasons.append(f"{burst}, this one tiny ({amount:.2f})")
            else:  # the card owner paying normally during an attack: flag, do not block
                score = max(score, 0.4)
                reasons.append(f"{burst}, but a normal amount ({amount:.2f})")
        if failures >= 5:
            score = max(score, 0.6)
            reasons.append(f"{failures} failed logins in 5 min")
        return score, reasons


@dataclass
class ModelScorer:
    """A trained classifier (``predict_proba``) over :func:`model_row`; missing values count as 0."""

    model: Any
    name: str = "model"

    @classmethod
    def load(cls, path: Path) -> ModelScorer:
        import joblib

        return cls(joblib.load(path), name=f"model:{path.name}")

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]:
        row = [model_row(features, amount)]
        probability = float(self.model.predict_proba(row)[0][1])
        return probability, [f"model probability {probability:.2f}"]


def model_row(features: Mapping[str, Any], amount: float) -> list[float]:
    """The model's input vector: the fraud features (missing = 0) and the payment's amount."""
    return [*(float(features.get(name) or 0.0) for name in MODEL_FEATURES), float(amount)]


@dataclass
class FraudStats:
    decided: int = 0
    declined: int = 0
    degraded: int = 0
    #: confusion counts against the scenario's ground truth (``is_fraud``), for evaluation
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class FraudAgent:
    def __init__(
        self,
        context: ContextClient,
        scorer: Scorer | None = None,
        *,
        threshold: float = 0.5,
        decisions_topic: str = topics.DECISIONS,
        budget_ms: float = 30.0,
    ) -> None:
        self.context = context
        self.scorer = scorer or CardTestingRules()
        self.threshold = threshold
        self.decisions_topic = decisions_topic
        self.budget_ms = budget_ms
        self.stats = FraudStats()

    def decide(self, txn: Transaction, source: str) -> Decision:
        context = self.context.get_context([txn.user_id], "fraud_features", budget_ms=self.budget_ms)
        score, reasons = self.scorer.score(context.features[txn.user_id], txn.amount)
        declined = score >= self.threshold
        self._count(declined, txn.is_fraud, bool(context.degraded))
        return Decision(
            event_time=txn.event_time,
            decision_id=source,
            agent="fraud",
            entity_id=txn.txn_id,
            action="decline" if declined else "approve",
            score=score,
            reasons=reasons,
            degraded=context.degraded,
            source=source,
            model=self.scorer.name,
        )

    def handle(self, message: Message, producer: Producer) -> None:
        try:
            txn = serde.decode(Transaction, message.value())
        except SchemaError as exc:
            raise DeadLetter(str(exc)) from None
        decision = self.decide(txn, idempotency_key(message.topic(), message.partition(), message.offset()))
        key, value, headers = serde.encode(decision)
        producer.produce(self.decisions_topic, key=key, value=value, headers=headers)

    def _count(self, declined: bool, is_fraud: bool, degraded: bool) -> None:
        s = self.stats
        s.decided += 1
        s.declined += declined
        s.degraded += degraded
        if declined and is_fraud:
            s.tp += 1
        elif declined:
            s.fp += 1
        elif is_fraud:
            s.fn += 1
        else:
            s.tn += 1


def run_fraud_agent(
    settings: Settings,
    *,
    consumer_group: str = "livectx-fraud",
    worker_id: str = "0",
    source_topic: str = topics.TRANSACTIONS,
    decisions_topic: str = topics.DECISIONS,
    model: Path | None = None,
    threshold: float = 0.5,
    until_caught_up: bool = False,
) -> tuple[FraudAgent, Any]:
    context = ContextClient.from_settings(
        settings, ContextConfig(budget_ms=30.0, features_timeout_ms=25.0), vectors=False
    )
    scorer: Scorer = ModelScorer.load(model) if model is not None else CardTestingRules()
    agent = FraudAgent(context, scorer, threshold=threshold, decisions_topic=decisions_topic)
    stats = run_agent(
        settings, name="fraud", source_topic=source_topic, consumer_group=consumer_group, worker_id=worker_id,
        handle=agent.handle, close=context.close, batch_size=200, until_caught_up=until_caught_up,
    )  # fmt: skip
    return agent, stats
