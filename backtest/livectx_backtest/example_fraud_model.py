"""Train the fraud agent's model on the fraud scenario's history, with point-in-time features.

Each payment becomes one row: the user's fraud features as the online store held them right after that
payment (recomputed with the streaming engine's declarations: no value from the future) plus its amount;
the label is the scenario's ground truth ``is_fraud``. A gradient-boosted classifier is fitted on one
seed's history and judged on another's, so the reported precision/recall are out of sample.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livectx_agents.example_fraud import MODEL_FEATURES

from livectx.produce import generated_events
from livectx.repo import current_repo
from livectx_backtest.asof import AsOfFeatures

START = datetime(2026, 1, 1, tzinfo=UTC)


def training_rows(seed: int, events: int) -> tuple[list[list[float]], list[int]]:
    """One row per payment of the scenario's first ``events`` events: :func:`model_row` of the features the
    online store held right after it (the engine's window state, :class:`~livectx_backtest.asof.AsOfFeatures`,
    as the backtest computes them), and its ``is_fraud`` label."""
    generated = generated_events(current_repo(), "fraud", seed, START, 200.0)
    history = (e for _topic, e in itertools.islice(generated, events))
    asof = AsOfFeatures("fraud_features", MODEL_FEATURES)
    asof.feed_events(history)
    return asof.payments.rows, [int(y) for y in asof.payments.is_fraud]


@dataclass(frozen=True)
class Evaluation:
    payments: int
    frauds: int
    precision: float
    recall: float


def evaluate(model: Any, features: list[list[float]], labels: list[int], threshold: float = 0.5) -> Evaluation:
    scores = model.predict_proba(features)[:, 1]
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and y)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(scores, labels, strict=True) if s < threshold and y)
    return Evaluation(len(labels), sum(labels), tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def train_fraud_model(seed: int = 1, events: int = 40_000) -> Any:
    """A deterministic classifier (fixed seed) over the fraud agent's ``model_row`` inputs."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    features, labels = training_rows(seed, events)
    if sum(labels) == 0:
        raise ValueError(f"no fraud in the first {events} events of seed {seed}: train on more events")
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(features, labels)


def save(model: Any, path: Path) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
