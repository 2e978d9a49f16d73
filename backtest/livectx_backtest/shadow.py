"""Shadow mode: a candidate version decides beside the live agent, on the live stream, without acting.

What is decided is the candidate's decision (:class:`~livectx.repo.decisions.DecisionSpec`, declared in the
feature repo on the version's feature service). The shadow consumes the decision's source topic and the
live decisions topic with its own consumer group. For each scored event it reads the entity's features
from the online store exactly as a live agent's fast path does
(:class:`~livectx.features.online_reader.OnlineFeatureReader`), builds the model input with
:func:`~livectx.models.rows.model_row` and scores the candidate; it then joins the live decision on the
same event: a decision made on a record of that topic (its ``source`` key names the record) whose
``entity_id`` is the event's id field, positive when its ``action`` is the decision's declared ``action``.
It produces nothing: no decision, no side effect; it only reports agreement, the decisions that differ,
and, where the decision declares a label, both sides' precision/recall/F1 and their deltas.

Features are read when the shadow sees the event, so a shadow far behind the live agent may read newer
values than the agent did; run it beside the agent (or ``--until-caught-up`` right after it) to compare
like with like. Offsets are committed to the shadow's group at the end of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livectx import serde, topics
from livectx.errors import LivectxError, SchemaError
from livectx.events import Decision
from livectx.models.rows import model_row
from livectx.repo.decisions import DecisionSpec
from livectx.settings import Settings
from livectx_backtest.scoring import Candidate, load_candidates, resolve_decision

MAX_EXAMPLES = 10


@dataclass
class _Pair:
    event: Any = None
    candidate_score: float | None = None
    live: Decision | None = None


@dataclass
class ShadowReport:
    candidate: str
    threshold: float
    labelled: bool = True
    scored: int = 0
    live_decisions: int = 0
    compared: int = 0
    agree: int = 0
    bad_records: int = 0
    #: confusion counts on compared events (labelled decisions only): side -> {tp, fp, fn, tn}
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {side: dict.fromkeys(("tp", "fp", "fn", "tn"), 0) for side in ("live", "candidate")}
    )
    flagged: dict[str, int] = field(default_factory=lambda: {"live": 0, "candidate": 0})
    live_models: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None

    def metrics(self, side: str) -> dict[str, float]:
        """Precision, recall and F1 (labelled only) and how many compared events the side flagged."""
        if not self.labelled:
            return {"flagged": float(self.flagged[side])}
        c = self.confusion[side]
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "flagged": float(self.flagged[side])}

    def to_json(self) -> dict[str, Any]:
        live, cand = self.metrics("live"), self.metrics("candidate")
        return {
            "candidate": self.candidate,
            "threshold": self.threshold,
            "labelled": self.labelled,
            "scored": self.scored,
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
    """Joins scored events, candidate scores and live decisions; never produces anything."""

    def __init__(
        self, candidate: Candidate, decision: DecisionSpec, features: Any, topic: str, live_model: str | None = None
    ) -> None:
        self.candidate = candidate
        self.spec = decision  # what is decided (``decision`` is the method taking live decisions)
        self.features = features  # an OnlineFeatureReader
        self.topic = topic  # live decisions on records of this topic are compared
        self.live_model = live_model
        self.report = ShadowReport(candidate.ref, candidate.threshold, labelled=decision.label is not None)
        self._pending: dict[str, _Pair] = {}

    def events(self, events: list[Any]) -> None:
        """Score a batch of events with the candidate: one pipelined feature read, one predict_proba."""
        if not events:
            return
        version, d = self.candidate.version, self.spec
        values = self.features.read([getattr(e, d.entity_key) for e in events], version.feature_service)
        rows = [
            model_row({name: values[name][i] for name in version.feature_columns}, d.input_values(e),
                      version.feature_columns)
            for i, e in enumerate(events)
        ]  # fmt: skip
        scores = self.candidate.model.predict_proba(rows)[:, 1]
        for event, s in zip(events, scores, strict=True):
            self.report.scored += 1
            key = str(getattr(event, d.id_field))
            pair = self._pending.setdefault(key, _Pair())
            pair.event, pair.candidate_score = event, float(s)
            self._settle(key, pair)

    def decision(self, decision: Decision) -> None:
        if decision.source.rsplit("-", 2)[0] != self.topic:
            return  # an agent deciding about another stream
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

    def _settle(self, key: str, pair: _Pair) -> None:
        if pair.event is None or pair.live is None or pair.candidate_score is None:
            return
        del self._pending[key]
        r, d = self.report, self.spec
        r.compared += 1
        live_flagged = pair.live.action == d.action
        candidate_flagged = pair.candidate_score >= self.candidate.threshold
        label = bool(getattr(pair.event, d.label)) if d.label is not None else None
        r.agree += live_flagged == candidate_flagged
        if live_flagged != candidate_flagged and len(r.examples) < MAX_EXAMPLES:
            example: dict[str, Any] = {
                "id": key,
                "entity": str(getattr(pair.event, d.entity_key)),
                "event_time": pair.event.event_time.isoformat(),
            }
            if label is not None:
                example["label"] = label
            example["live"] = f"{pair.live.action} ({pair.live.model}, {pair.live.score})"
            example["candidate"] = f"{'positive' if candidate_flagged else 'negative'} ({pair.candidate_score:.4f})"
            r.examples.append(example)
        for side, flagged in (("live", live_flagged), ("candidate", candidate_flagged)):
            r.flagged[side] += flagged
            if label is not None:
                key_ = ("tp" if label else "fp") if flagged else ("fn" if label else "tn")
                r.confusion[side][key_] += 1


def run_shadow(
    settings: Settings,
    model: str,
    *,
    live_model: str | None = None,
    group: str = "livectx-shadow",
    topic: str | None = None,
    decisions_topic: str = topics.DECISIONS,
    models_topic: str = topics.MODELS,
    until_caught_up: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[ShadowReport], None] | None = None,
) -> ShadowReport:
    """Shadow ``model`` beside the live agent until caught up (the end offsets at start), or until
    ``should_stop`` (or Ctrl-C) when following the stream. ``topic``: the scored events' (default: the
    decision's source topic).

    Raises:
        LivectxError: an unknown or unusable version, no decision on its feature service, a missing topic.
    """
    from confluent_kafka import KafkaError

    from livectx.features.online_reader import OnlineFeatureReader
    from livectx.kafka import consumer
    from livectx.offsets import end_offsets
    from livectx.repo import current_repo

    (candidate,) = load_candidates(settings, [model], models_topic)
    decision = resolve_decision([candidate])
    topic = topic or decision.topic
    reader = OnlineFeatureReader.from_settings(settings)
    shadow = Shadow(candidate, decision, reader, topic, live_model)
    subscribed = [topic, decisions_topic]
    targets = end_offsets(settings, subscribed)
    missing = [t for t in subscribed if not any(tp[0] == t for tp in targets)]
    if missing:
        raise LivectxError(f"topic {missing[0]} does not exist on the broker (`livectx topics list`)")
    positions: dict[tuple[str, int], int] = {}
    event_type = current_repo(settings).model(decision.source)
    c = consumer(settings, group, **{"enable.partition.eof": True})
    c.subscribe(subscribed)
    last_progress = 0.0
    try:
        while not should_stop():
            scored: list[Any] = []
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
                    if message.topic() == topic:
                        scored.append(serde.decode(event_type, message.value()))  # type: ignore[arg-type]
                    else:
                        shadow.decision(serde.decode(Decision, message.value()))  # type: ignore[arg-type]
                except SchemaError:
                    shadow.report.bad_records += 1
            shadow.events(scored)
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
