"""Model versions under test: resolved and verified from the registry, scored on identical inputs, judged.

Every version is scored on the same payments and the same recomputed features; a version reads its own
``feature_columns`` (a subset of the union matrix, in its order) plus the amount, exactly as the fraud
agent's ``model_row`` builds it, and declines at ``score >= threshold`` (its ``config.threshold``, else
0.5), as the agent does. Scores come from ``predict_proba`` over numpy blocks of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livectx import topics
from livectx.errors import LivectxError
from livectx.models import ModelVersion, load_artifact, resolve
from livectx.settings import Settings

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = 0.5
SCORE_BLOCK = 50_000  # rows per predict_proba call


@dataclass(frozen=True)
class Candidate:
    """One resolved version: its record, the loaded (sha256-verified) model and its decline threshold."""

    version: ModelVersion
    model: Any
    threshold: float

    @property
    def ref(self) -> str:
        return self.version.ref


def load_candidates(settings: Settings, refs: Sequence[str], models_topic: str = topics.MODELS) -> list[Candidate]:
    """Resolve and load every ref (``fraud:v1``, or ``fraud`` for the active version).

    Raises:
        LivectxError: no ref, a repeated or unknown ref, an altered artifact, a bad threshold, or versions
            reading different feature services.
    """
    if not refs:
        raise LivectxError("give at least one --model NAME:VERSION to backtest (e.g. --model fraud:v1)")
    candidates: list[Candidate] = []
    for ref in refs:
        version = resolve(settings, ref, topic=models_topic)
        if any(c.ref == version.ref for c in candidates):
            raise LivectxError(f"model {version.ref} is given twice")
        threshold = version.config.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise LivectxError(f"{version.ref}: config threshold {threshold!r} is not a number in [0, 1]")
        model = load_artifact(settings, version)
        if not hasattr(model, "predict_proba"):
            raise LivectxError(f"{version.ref}: its artifact has no predict_proba (not a classifier)")
        candidates.append(Candidate(version, model, float(threshold)))
    services = {c.version.feature_service for c in candidates}
    if len(services) != 1:
        raise LivectxError(f"the versions read different feature services ({', '.join(sorted(services))})")
    return candidates


def union_columns(candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """Every feature any candidate reads, first-seen order: the columns recomputed once for all."""
    seen: dict[str, None] = {}
    for c in candidates:
        seen.update(dict.fromkeys(c.version.feature_columns))
    return tuple(seen)


def score(candidate: Candidate, rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """The candidate's fraud probability for each row of the union matrix (its columns + the amount)."""
    import numpy as np

    picks = [columns.index(c) for c in candidate.version.feature_columns] + [len(columns)]
    inputs = rows[:, picks]
    if not len(inputs):
        return np.zeros(0)
    blocks = range(0, len(inputs), SCORE_BLOCK)
    parts = [candidate.model.predict_proba(inputs[i : i + SCORE_BLOCK])[:, 1] for i in blocks]
    return np.concatenate(parts).astype(np.float64)


def judge(scores: np.ndarray, labels: np.ndarray, threshold: float, fp_cost: float, fn_cost: float) -> dict[str, Any]:
    """Confusion counts, precision, recall, F1, ROC-AUC (None with one class only) and decision cost."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    declined = scores >= threshold
    tp = int((declined & labels).sum())
    fp = int((declined & ~labels).sum())
    fn = int((~declined & labels).sum())
    tn = int((~declined & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < labels.sum() < len(labels)
    return {
        "threshold": threshold,
        "declined": int(declined.sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        "average_precision": float(average_precision_score(labels, scores)) if both else None,
        "cost": fp_cost * fp + fn_cost * fn,
    }
