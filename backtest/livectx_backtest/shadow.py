"""Shadow mode: a candidate version decides beside the live fraud agent, on the live stream, without acting.

The shadow consumes the payments topic and the live decisions topic with its own consumer group. For each
payment it reads the user's features from the online store exactly as the live agent's fast path does
(:class:`~livectx.features.online_reader.OnlineFeatureReader`, the feature service of the candidate's
version), builds the agent's ``model_row`` and scores the candidate; it then joins the live agent's
decision on the same payment (``Decision.entity_id`` = ``txn_id``). It produces nothing: no decision, no
side effect; it only reports agreement, the decisions that differ, and, where payments carry labels
(``is_fraud``), both sides' precision/recall/F1 and their deltas.

Features are read when the shadow sees the payment, so a shadow far behind the live agent may read newer
values than the agent did; run it beside the agent (or ``--until-caught-up`` right after it) to compare
like with like. Offsets are committed to the shadow's group at the end of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livectx_agents.example_fraud import PAYMENTS_TOPIC, model_row, payment_model

from livectx import serde, topics
from livectx.errors import LivectxError, SchemaError
from livectx.events import Decision
from livectx.settings import Settings
from livectx_backtest.scoring import Candidate, load_candidates

MAX_EXAMPLES = 10


@dataclass
class _Pair:
    txn: Any = None
    candidate_score: float | None = None
    live: Decision | None = None


@dataclass
class ShadowReport:
    candidate: str
    threshold: float
    payments: int = 0
    live_decisions: int = 0
    compared: int = 0
    agree: int = 0
    bad_records: int = 0
    #: confusion counts on compared, labelled payments: side -> {tp, fp, fn, tn}
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {side: dict.fromkeys(("tp", "fp", "fn", "tn"), 0) for side in ("live", "candidate")}
    )
    live_models: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None

    def metrics(self, side: str) -> dict[str, float]:
        c = self.confusion[side]
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "declined": float(c["tp"] + c["fp"])}

    def to_json(self) -> dict[str, Any]:
        live, cand = self.metrics("live"), self.metrics("candidate")
        return {
            "candidate": self.candidate,
            "threshold": self.threshold,
            "payments": self.payments,
            "live_decisions": self.live_decisions,
            "compared": self.compared,
            "agree": self.agree,
            "agreement": None if self.agreement is None else round(self.agreement, 6),
            "live_models": dict(sorted(self.live_models.items())),
            "live": {k: round(v, 6) for k, v in live.items()},
            "candidate_metrics": {k: round(v, 6) for k, v in cand.items()},
            "delta": {k: round(cand[k] - live[k], 6) for k in live},
            "bad_records": self.bad_records,
            "examples": self.examples,
        }


class Shadow:
    """Joins payments, candidate scores and live decisions; never produces anything."""

    def __init__(self, candidate: Candidate, features: Any, live_model: str | None = None) -> None:
        self.candidate = candidate
        self.features = features  # an OnlineFeatureReader
        self.live_model = live_model
        self.report = ShadowReport(candidate.ref, candidate.threshold)
        self._pending: dict[str, _Pair] = {}

    def payments(self, txns: list[Any]) -> None:
        """Score a batch of payments with the candidate: one pipelined feature read, one predict_proba."""
        if not txns:
            return
        version = self.candidate.version
        values = self.features.read([t.user_id for t in txns], version.feature_service)
        rows = [
            model_row({name: values[name][i] for name in version.feature_columns}, t.amount, version.feature_columns)
            for i, t in enumerate(txns)
        ]
        scores = self.candidate.model.predict_proba(rows)[:, 1]
        for txn, s in zip(txns, scores, strict=True):
            self.report.payments += 1
            pair = self._pending.setdefault(txn.txn_id, _Pair())
            pair.txn, pair.candidate_score = txn, float(s)
            self._settle(txn.txn_id, pair)

    def decision(self, decision: Decision) -> None:
        if decision.agent != "fraud":
            return
        if (
            self.live_model is not None
            and decision.model not in (self.live_model, None)
            and not (decision.model or "").startswith(f"{self.live_model}:")
        ):
            return
        self.report.live_decisions += 1
        self.report.live_models[decision.model or "?"] = self.report.live_models.get(decision.model or "?", 0) + 1
        pair = self._pending.setdefault(decision.entity_id, _Pair())
        pair.live = decision
        self._settle(decision.entity_id, pair)

    def _settle(self, txn_id: str, pair: _Pair) -> None:
        if pair.txn is None or pair.live is None or pair.candidate_score is None:
            return
        del self._pending[txn_id]
        r = self.report
        r.compared += 1
        live_declined = pair.live.action == "decline"
        candidate_declined = pair.candidate_score >= self.candidate.threshold
        if live_declined == candidate_declined:
            r.agree += 1
        elif len(r.examples) < MAX_EXAMPLES:
            r.examples.append(
                {
                    "txn_id": txn_id,
                    "user_id": pair.txn.user_id,
                    "event_time": pair.txn.event_time.isoformat(),
                    "is_fraud": pair.txn.is_fraud,
                    "live": f"{pair.live.action} ({pair.live.model}, {pair.live.score})",
                    "candidate": f"{'decline' if candidate_declined else 'approve'} ({pair.candidate_score:.4f})",
                }
            )
        for side, declined in (("live", live_declined), ("candidate", candidate_declined)):
            c = r.confusion[side]
            key = ("tp" if pair.txn.is_fraud else "fp") if declined else ("fn" if pair.txn.is_fraud else "tn")
            c[key] += 1


def run_shadow(
    settings: Settings,
    model: str,
    *,
    live_model: str | None = None,
    group: str = "livectx-shadow",
    transactions_topic: str = PAYMENTS_TOPIC,
    decisions_topic: str = topics.DECISIONS,
    models_topic: str = topics.MODELS,
    until_caught_up: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[ShadowReport], None] | None = None,
) -> ShadowReport:
    """Shadow ``model`` beside the live agent until caught up (the end offsets at start), or until
    ``should_stop`` (or Ctrl-C) when following the stream.

    Raises:
        LivectxError: an unknown or unusable version, a missing topic.
    """
    from confluent_kafka import KafkaError

    from livectx.features.online_reader import OnlineFeatureReader
    from livectx.kafka import consumer
    from livectx.offsets import end_offsets

    (candidate,) = load_candidates(settings, [model], models_topic)
    reader = OnlineFeatureReader.from_settings(settings)
    shadow = Shadow(candidate, reader, live_model)
    subscribed = [transactions_topic, decisions_topic]
    targets = end_offsets(settings, subscribed)
    missing = [t for t in subscribed if not any(tp[0] == t for tp in targets)]
    if missing:
        raise LivectxError(f"topic {missing[0]} does not exist on the broker (`livectx topics list`)")
    positions: dict[tuple[str, int], int] = {}
    payment_type = payment_model(settings)
    c = consumer(settings, group, **{"enable.partition.eof": True})
    c.subscribe(subscribed)
    last_progress = 0.0
    try:
        while not should_stop():
            payments: list[Any] = []
            for message in c.consume(500, 0.5):
                error = message.error()
                where = (message.topic(), message.partition())
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        positions[where] = max(positions.get(where, 0), message.offset())
                        continue
                    raise LivectxError(f"shadow consumer failed: {error}")
                positions[where] = message.offset() + 1
                try:
                    if message.topic() == transactions_topic:
                        payments.append(serde.decode(payment_type, message.value()))  # type: ignore[arg-type]
                    else:
                        shadow.decision(serde.decode(Decision, message.value()))  # type: ignore[arg-type]
                except SchemaError:
                    shadow.report.bad_records += 1
            shadow.payments(payments)
            if progress is not None and time.monotonic() - last_progress > 1.0:
                progress(shadow.report)
                last_progress = time.monotonic()
            if until_caught_up and all(positions.get(tp, 0) >= end for tp, end in targets.items()):
                break
        if positions:
            from confluent_kafka import TopicPartition

            c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()], asynchronous=False)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
    return shadow.report
