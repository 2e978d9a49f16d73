"""Train a decision's model on a repo generator's history, with point-in-time features.

Each scored event of the generated history becomes one row: the entity's features as the online store held
them right after that event (recomputed with the streaming engine's declarations, through the backtest's
own :class:`~livectx_backtest.asof.AsOfFeatures`: no value from the future), then the event's declared
inputs; the label is the decision's label field. A gradient-boosted classifier with a fixed seed is fitted
on one seed's history and judged on another's, so the reported precision/recall are out of sample and the
same command gives the same model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livectx.errors import LivectxError
from livectx.produce import generated_events
from livectx.repo import current_repo
from livectx.repo.decisions import DecisionSpec
from livectx_backtest.asof import AsOfFeatures

START = datetime(2026, 1, 1, tzinfo=UTC)
RATE = 200.0  # events per second of event time


def training_rows(
    decision: DecisionSpec, generator: str, seed: int, events: int, columns: Sequence[str] | None = None
) -> tuple[list[list[float]], list[int]]:
    """One row per scored event among generator ``generator``'s first ``events`` events (seed ``seed``):
    :func:`~livectx.models.rows.model_row` of the features the online store held right after it, over
    ``columns`` (default: the decision's), and its label (0/1).

    Raises:
        LivectxError: the decision declares no label; an unknown generator.
    """
    if decision.label is None:
        raise LivectxError(
            f"decision {decision.service} declares no label: nothing to train on (decision_service(..., label=FIELD))"
        )
    generated = generated_events(current_repo(), generator, seed, START, RATE)
    asof = AsOfFeatures(decision, decision.columns if columns is None else columns)
    asof.feed_events(e for _topic, e in itertools.islice(generated, events))
    return asof.scored.rows, [int(y) for y in asof.scored.label]


@dataclass(frozen=True)
class Evaluation:
    scored: int
    positives: int
    precision: float
    recall: float


def evaluate(model: Any, features: list[list[float]], labels: list[int], threshold: float = 0.5) -> Evaluation:
    """Precision and recall of ``model`` at ``threshold`` (positive: score >= threshold)."""
    scores = model.predict_proba(features)[:, 1] if features else []
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and y)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(scores, labels, strict=True) if s < threshold and y)
    return Evaluation(len(labels), sum(labels), tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def train(decision: DecisionSpec, generator: str, seed: int = 1, events: int = 40_000) -> Any:
    """A deterministic classifier (fixed seed) over the decision's model rows.

    Raises:
        LivectxError: no label, or no positive (or no negative) among the scored events: train on more events.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    features, labels = training_rows(decision, generator, seed, events)
    if not 0 < sum(labels) < len(labels):
        raise LivectxError(
            f"{sum(labels)} positives among {len(labels)} scored events in the first {events} events of generator "
            f"{generator} (seed {seed}): a classifier needs both classes; train on more events"
        )
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(features, labels)


def save(model: Any, path: Path) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


__all__ = ["Evaluation", "evaluate", "save", "train", "training_rows"]
