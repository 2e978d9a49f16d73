"""The fraud agent's scorers: a trained model or the card-testing rules, behind one :class:`Scorer` protocol.

Apart from the agent's loop (:mod:`.example_fraud`) because scoring is what backtests, benchmarks and
training reproduce: the model's input row (:func:`model_row`) and its column order (:data:`MODEL_FEATURES`)
must be the same everywhere, and they read more plainly without the agent's Kafka side around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from livectx.errors import LivectxError
from livectx.models import ModelVersion, load_artifact, rows
from livectx.settings import Settings

#: The fraud model's inputs, in column order: what training writes and this agent reads (the example repo
#: declares the same list as its ``fraud_features`` service's ``livectx.model_columns``; a test pins it).
MODEL_FEATURES: tuple[str, ...] = (
    "txn_count_5m",
    "txn_amount_max_5m",
    "txn_amount_sum_1h",
    "distinct_merchants_24h",
    "distinct_ips_10m",
    "distinct_cards_10m",
    "login_failures_5m",
)


#: A score and its reasons.
Scored = tuple[float, list[str]]


class Scorer(Protocol):
    #: what decisions record in their ``model`` field (``fraud:v2``, ``rules:card-testing``, ``model:m.joblib``)
    name: str
    #: the feature service whose values ``score`` expects
    feature_service: str
    #: the scorer's own decline threshold (a registered version's ``config``), else None: the agent's
    threshold: float | None

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]: ...


def score_all(scorer: Scorer, features: Sequence[Mapping[str, Any]], amounts: Sequence[float]) -> list[Scored]:
    """A batch's scores: the scorer's own ``score_many`` where it has one (a model scores a matrix in one
    call: its per-call overhead dwarfs a row's cost), else ``score`` row by row."""
    many = getattr(scorer, "score_many", None)
    if many is not None:
        return list(many(features, amounts))
    return [scorer.score(f, a) for f, a in zip(features, amounts, strict=True)]


@dataclass(frozen=True)
class CardTestingRules:
    """Fallback rules: tiny payments in a burst from many distinct IPs within minutes is card testing."""

    name: str = "rules:card-testing"
    feature_service: str = "fraud_features"
    threshold: float | None = None
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
    columns: tuple[str, ...] = MODEL_FEATURES
    feature_service: str = "fraud_features"
    threshold: float | None = None

    @classmethod
    def load(cls, path: Path) -> ModelScorer:
        import joblib

        return cls(joblib.load(path), name=f"model:{path.name}")

    @classmethod
    def from_version(cls, settings: Settings, version: ModelVersion) -> ModelScorer:
        """A registered version: its artifact (sha256-verified), its columns and service, and the
        ``threshold`` of its config if it has one.

        Raises:
            LivectxError: the artifact is unreadable, altered, or the config's threshold is not in [0, 1].
        """
        threshold = version.config.get("threshold")
        if threshold is not None and not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
            raise LivectxError(f"{version.ref}: config threshold {threshold!r} is not a number in [0, 1]")
        return cls(
            load_artifact(settings, version),
            name=version.ref,
            columns=version.feature_columns,
            feature_service=version.feature_service,
            threshold=None if threshold is None else float(threshold),
        )

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]:
        return self.score_many([features], [amount])[0]

    def score_many(self, features: Sequence[Mapping[str, Any]], amounts: Sequence[float]) -> list[Scored]:
        """One ``predict_proba`` over the batch's rows (measured: 0.55 ms a call on this machine, of which
        the trees take 0.17 ms a row)."""
        rows = [model_row(f, a, self.columns) for f, a in zip(features, amounts, strict=True)]
        probabilities = self.model.predict_proba(rows)[:, 1] if rows else []
        return [(float(p), [f"model probability {p:.2f}"]) for p in probabilities]


def model_row(features: Mapping[str, Any], amount: float, columns: tuple[str, ...] = MODEL_FEATURES) -> list[float]:
    """The model's input vector: its feature columns (missing = 0), then the payment's amount (the repo's
    ``fraud_features`` decision declares ``amount`` as its one input), built by the product's own
    :func:`livectx.models.rows.model_row`, as backtests and training build it."""
    return rows.model_row(features, (amount,), columns)


def one_scoring_thread() -> None:
    """Score on the calling thread alone: the agent scores one row at a time, where scikit-learn's OpenMP
    pool only adds hand-offs (measured on a loaded 2-core machine: 3-7 ms a ``predict_proba`` row, against
    0.2 ms single-threaded). Process-wide, as the agent's process is its own."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
