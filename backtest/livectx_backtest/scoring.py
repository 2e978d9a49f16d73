"""Model versions under test: resolved and verified from the registry, scored on identical inputs, judged.

Every version is scored on the same events and the same recomputed features; a version reads its own
``feature_columns`` (a subset of the union matrix, in its order) plus the decision's inputs, exactly as
:func:`livectx.models.rows.model_row` builds it for live agents, and flags an event (a positive decision)
at ``score >= threshold`` (its ``config.threshold``, else 0.5). Scores come from ``predict_proba`` over
numpy blocks of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livectx import topics
from livectx.errors import LivectxError
from livectx.models import ModelVersion, load_artifact, resolve
from livectx.repo.decisions import DecisionSpec
from livectx.settings import Settings

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = 0.5
SCORE_BLOCK = 50_000  # rows per predict_proba call


@dataclass(frozen=True)
class Candidate:
    """One resolved version: its record, the loaded (sha256-verified) model, and its positive threshold."""

    version: ModelVersion
    model: Any
    threshold: float

    @property
    def ref(self) -> str:
        return self.version.ref


def load_candidates(settings: Settings, refs: Sequence[str], models_topic: str = topics.MODELS) -> list[Candidate]:
    """Resolve and load every ref (``NAME:VERSION``, or ``NAME`` for the active version).

    Raises:
        LivectxError: no ref, a repeated or unknown ref, an altered artifact, a bad threshold, or versions
            reading different feature services.
    """
    if not refs:
        raise LivectxError("give at least one --model NAME:VERSION to backtest")
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


def resolve_decision(candidates: Sequence[Candidate], service: str | None = None) -> DecisionSpec:
    """The decision the versions score: their registered feature service's, else ``service``'s, else the
    repo's only decision.

    Raises:
        LivectxError: ``service`` is not the versions' service, or names no decision (or none was named and
            the repo declares none or several).
    """
    from livectx.repo import current_repo

    registered = candidates[0].version.feature_service if candidates else None
    if service is not None and registered is not None and service != registered:
        raise LivectxError(f"--features {service}: the versions were registered on feature service {registered}")
    return current_repo().decision(registered or service)


def union_columns(candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """Every feature any candidate reads, first-seen order: the columns recomputed once for all."""
    seen: dict[str, None] = {}
    for c in candidates:
        seen.update(dict.fromkeys(c.version.feature_columns))
    return tuple(seen)


def score(candidate: Candidate, rows: np.ndarray, columns: Sequence[str], inputs: int) -> np.ndarray:
    """The candidate's positive-class probability for each row of the union matrix (``columns``, then the
    decision's ``inputs`` input values): its own columns, in its order, then the inputs."""
    return predict(candidate.model, rows[:, picks(candidate, columns, inputs)])


def picks(candidate: Candidate, columns: Sequence[str], inputs: int) -> list[int]:
    """Where the candidate's inputs are in a row of the union matrix: its columns in its order, then the
    decision's inputs."""
    return [columns.index(c) for c in candidate.version.feature_columns] + list(
        range(len(columns), len(columns) + inputs)
    )


def predict(model: Any, inputs: np.ndarray) -> np.ndarray:
    """``predict_proba``'s positive class, in blocks (a row's score does not depend on its block)."""
    import numpy as np

    if not len(inputs):
        return np.zeros(0)
    blocks = range(0, len(inputs), SCORE_BLOCK)
    return np.concatenate([model.predict_proba(inputs[i : i + SCORE_BLOCK])[:, 1] for i in blocks]).astype(np.float64)


def distribution(scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """What needs no label: the threshold, how many events it flags, and the scores' quantiles."""
    import numpy as np

    quantiles = np.quantile(scores, [0.5, 0.9, 0.99]) if len(scores) else np.zeros(3)
    return {
        "threshold": threshold,
        "flagged": int((scores >= threshold).sum()),
        "score_mean": float(scores.mean()) if len(scores) else 0.0,
        "score_p50": float(quantiles[0]),
        "score_p90": float(quantiles[1]),
        "score_p99": float(quantiles[2]),
    }


def judge(scores: np.ndarray, labels: np.ndarray, threshold: float, fp_cost: float, fn_cost: float) -> dict[str, Any]:
    """Confusion counts, precision, recall, F1, ROC-AUC (None with one class only) and decision cost."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    flagged = scores >= threshold
    tp = int((flagged & labels).sum())
    fp = int((flagged & ~labels).sum())
    fn = int((~flagged & labels).sum())
    tn = int((~flagged & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < labels.sum() < len(labels)
    return {
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
