"""The fraud agent: score each payment from its user's streaming features, decide within a budget.

For each transaction on ``livectx.transactions``: ``get_context`` reads the user's ``fraud_features``
(windowed counts, distinct IPs and cards, amounts, failed logins: kept fresh by the feature engine); a
scorer turns them into a fraud probability; the agent declines above a threshold and approves otherwise.
The decision goes to ``livectx.decisions`` in the same Kafka transaction as the input offsets.

Scorers: a trained model (any object with ``predict_proba`` over :func:`model_row`, loaded with joblib),
else :class:`CardTestingRules`, which targets the card-testing pattern: a burst of payments from many
distinct IPs inside minutes. When features are unavailable (degraded context) the rules see the declared
defaults and approve: a fraud check that fails open, reported in the decision's ``degraded`` field.

The model comes from a file (``--model``) or, live, from the model registry (``--model-name fraud``): the
agent follows the name's active version through a :class:`~livectx.models.RegistryView`, swaps the scorer
between two decisions when a new version is activated (each decision's ``model`` field names the version
that made it, e.g. ``fraud:v2``), and falls back to the rules when the name is retired.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from livectx import serde, topics, tracing
from livectx.errors import LivectxError, SchemaError
from livectx.events import Decision, Event
from livectx.models import ModelVersion, RegistryView, load_artifact, rows
from livectx.models.version import check_name
from livectx.prometheus import MODEL_IN_USE
from livectx.schemas.platform import platform_encoder
from livectx.schemas.serializers import RegistryEncoder
from livectx.settings import Settings
from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.idempotency import idempotency_key
from livectx_agents.loop import DeadLetter, run_agent

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)

#: The example repo's payments topic and source (this agent belongs to the example domain).
PAYMENTS_TOPIC = "livectx.transactions"
PAYMENT_SOURCE = "transaction"
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


def payment_model(settings: Settings | None = None) -> type[Event]:
    """The payment event model, as the feature repo declares it."""
    from livectx.repo import current_repo

    return current_repo(settings).model(PAYMENT_SOURCE)


class Scorer(Protocol):
    #: what decisions record in their ``model`` field (``fraud:v2``, ``rules:card-testing``, ``model:m.joblib``)
    name: str
    #: the feature service whose values ``score`` expects
    feature_service: str
    #: the scorer's own decline threshold (a registered version's ``config``), else None: the agent's
    threshold: float | None

    def score(self, features: Mapping[str, Any], amount: float) -> tuple[float, list[str]]: ...


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
        row = [model_row(features, amount, self.columns)]
        probability = float(self.model.predict_proba(row)[0][1])
        return probability, [f"model probability {probability:.2f}"]


def model_row(features: Mapping[str, Any], amount: float, columns: tuple[str, ...] = MODEL_FEATURES) -> list[float]:
    """The model's input vector: its feature columns (missing = 0), then the payment's amount (the repo's
    ``fraud_features`` decision declares ``amount`` as its one input), built by the product's own
    :func:`livectx.models.rows.model_row`, as backtests and training build it."""
    return rows.model_row(features, (amount,), columns)


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


def _model_labels(scorer: str) -> tuple[str, str, str]:
    """(agent, model, version) of a scorer name such as ``fraud:v3`` (rules and files: no version)."""
    model, _, version = scorer.partition(":")
    return "fraud", model, version or "-"


class FraudAgent:
    def __init__(
        self,
        context: ContextClient,
        scorer: Scorer | None = None,
        *,
        threshold: float = 0.5,
        decisions_topic: str = topics.DECISIONS,
        budget_ms: float = 30.0,
        encoder: RegistryEncoder | None = None,
    ) -> None:
        self.context = context
        #: Writes decisions plain, or framed through the registry (``platform_encoder(settings)``); without
        #: one, plain (an encoder that declares nothing framed never asks a registry).
        self._encoder = encoder or RegistryEncoder((), make_client=lambda: None)
        self._scorer: Scorer = scorer or CardTestingRules()
        MODEL_IN_USE.labels(*_model_labels(self._scorer.name)).set(1)
        self._swapped = threading.Condition()
        self.threshold = threshold
        self.decisions_topic = decisions_topic
        self.payment_model = payment_model()
        self.budget_ms = budget_ms
        self.stats = FraudStats()

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    def use(self, scorer: Scorer, why: str) -> None:
        """Swap the scorer (from any thread). One reference assignment: a decision in flight finishes with
        the scorer it started with, and the next one uses the new scorer."""
        with self._swapped:
            previous, self._scorer = self._scorer, scorer
            self._swapped.notify_all()
        with contextlib.suppress(KeyError), warnings.catch_warnings():
            # KeyError: another agent of this process dropped it already. The warning: Feast's import turns
            # on prometheus_client's multi-process mode, where removed labels stay in its files (harmless).
            warnings.simplefilter("ignore", UserWarning)
            MODEL_IN_USE.remove(*_model_labels(previous.name))
        MODEL_IN_USE.labels(*_model_labels(scorer.name)).set(1)
        log.info("fraud agent: %s (deciding with %s)", why, scorer.name)

    def wait_for_scorer(self, name: str, timeout_s: float) -> bool:
        """Block until the agent decides with the scorer named ``name``; False after ``timeout_s``."""
        with self._swapped:
            return self._swapped.wait_for(lambda: self._scorer.name == name, timeout=timeout_s)

    def decide(self, txn: Any, source: str) -> Decision:
        scorer = self._scorer  # read once: a live swap never mixes two versions within one decision
        context = self.context.get_context([txn.user_id], scorer.feature_service, budget_ms=self.budget_ms)
        score, reasons = scorer.score(context.features[txn.user_id], txn.amount)
        declined = score >= (self.threshold if scorer.threshold is None else scorer.threshold)
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
            model=scorer.name,
        )

    def handle(self, message: Message, producer: Producer) -> None:
        try:
            txn = serde.decode(self.payment_model, message.value())
        except SchemaError as exc:
            raise DeadLetter(str(exc)) from None
        decision = self.decide(txn, idempotency_key(message.topic(), message.partition(), message.offset()))
        key, value, headers = self._encoder.encode(decision, self.decisions_topic)
        producer.produce(self.decisions_topic, key=key, value=value, headers=tracing.propagated(headers))

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


class RegistryFollower:
    """Keeps an agent on the active version of one registered model name; the rules when there is none.

    Called by :meth:`RegistryView.follow` with the active version at start and on every change. A version
    whose artifact cannot be used (altered, unreadable) is refused with an error in the log and the agent
    keeps deciding with what it had: a bad registration must not stop payments from being decided."""

    def __init__(self, settings: Settings, agent: FraudAgent, name: str) -> None:
        self.settings = settings
        self.agent = agent
        self.name = name
        self._followed: str | None = None

    def __call__(self, version: ModelVersion | None) -> None:
        if version is None:
            why = (
                f"model {self.name} retired in the registry: falling back to the card-testing rules"
                if self._followed
                else f"no active version of model {self.name} in the registry: the card-testing rules decide"
            )
            self._followed = None
            self.agent.use(CardTestingRules(), why)
            return
        try:
            scorer = ModelScorer.from_version(self.settings, version)
        except LivectxError as exc:
            log.error(
                "fraud agent: cannot use %s (%s); still deciding with %s", version.ref, exc, self.agent.scorer.name
            )
            return
        previous, self._followed = self._followed, version.ref
        self.agent.use(scorer, f"switched from {previous} to {version.ref}" if previous else f"using {version.ref}")


def open_fraud_agent(
    settings: Settings,
    *,
    decisions_topic: str = topics.DECISIONS,
    model: Path | None = None,
    model_name: str | None = None,
    models_topic: str = topics.MODELS,
    threshold: float = 0.5,
) -> tuple[FraudAgent, Callable[[], None]]:
    """The agent and its ``close``: scoring with ``model`` (a file), the registry's ``model_name``
    (followed live), or the rules. Returns once the registry view has caught up, with its scorer set.

    Raises:
        LivectxError: both ``model`` and ``model_name``; the registry topic unreadable.
    """
    if model is not None and model_name is not None:
        raise LivectxError("give either --model (a file) or --model-name (from the registry), not both")
    if model_name is not None:
        check_name(model_name)
    context = ContextClient.from_settings(
        settings, ContextConfig(budget_ms=30.0, features_timeout_ms=25.0), vectors=False
    )
    scorer: Scorer = ModelScorer.load(model) if model is not None else CardTestingRules()
    encoder = platform_encoder(settings)
    encoder.check()  # an unregistered decisions schema fails here, in one line, before any decision
    agent = FraudAgent(context, scorer, threshold=threshold, decisions_topic=decisions_topic, encoder=encoder)
    if model_name is None:
        return agent, context.close
    try:
        view = RegistryView(settings, models_topic).start()
    except BaseException:
        context.close()
        raise
    view.follow(model_name, RegistryFollower(settings, agent, model_name))

    def close() -> None:
        try:
            view.close()
        finally:
            context.close()

    return agent, close


def run_fraud_agent(
    settings: Settings,
    *,
    consumer_group: str = "livectx-fraud",
    worker_id: str = "0",
    source_topic: str = PAYMENTS_TOPIC,
    decisions_topic: str = topics.DECISIONS,
    model: Path | None = None,
    model_name: str | None = None,
    models_topic: str = topics.MODELS,
    threshold: float = 0.5,
    until_caught_up: bool = False,
) -> tuple[FraudAgent, Any]:
    agent, close = open_fraud_agent(
        settings, decisions_topic=decisions_topic, model=model, model_name=model_name, models_topic=models_topic,
        threshold=threshold,
    )  # fmt: skip
    stats = run_agent(
        settings, name="fraud", source_topic=source_topic, consumer_group=consumer_group, worker_id=worker_id,
        handle=agent.handle, close=close, batch_size=200, until_caught_up=until_caught_up,
    )  # fmt: skip
    return agent, stats
