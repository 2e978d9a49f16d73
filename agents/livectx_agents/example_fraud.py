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
import gc
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
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


#: Users per ``get_context`` when a batch is decided: a read of 32 users costs about 1 ms here (one user's
#: 0.35 ms), so each read stays well inside the per-call features timeout even on a loaded machine, where a
#: read of 200 users overran it and failed the batch open.
CONTEXT_CHUNK = 32
#: Payments the agent takes from its queue at most per batch (and Kafka transaction): each decision of a
#: batch waits for the whole batch, so a backlog is worked off in batches that stay short (measured at
#: 1,000 payments/s with the stack on 2 cores: decision p99 155-213 ms with batches of up to 200, 101-140
#: ms with 64, 48 ms with 32).
DECISION_BATCH = 32
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
        #: A prepared batch's decisions (or dead-letter reasons) by record (topic, partition, offset).
        self._prepared: dict[tuple[str, int, int], Decision | DeadLetter] = {}

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
        return self.decide_many([txn], [source])[0]

    def decide_many(self, txns: Sequence[Any], sources: Sequence[str]) -> list[Decision]:
        """Decide payments together: one ``get_context`` for all their users (one Redis round trip) and one
        scorer call. Each payment is judged on its user's features as read, exactly as one at a time."""
        if not txns:
            return []
        scorer = self._scorer  # read once: a live swap never mixes two versions within one batch
        users = list(dict.fromkeys(t.user_id for t in txns))
        features: dict[str, Mapping[str, Any]] = {}
        degraded: dict[str, list[str]] = {}
        for at in range(0, len(users), CONTEXT_CHUNK):  # each read within the per-call budget, as one user's is
            chunk = users[at : at + CONTEXT_CHUNK]
            context = self.context.get_context(chunk, scorer.feature_service, budget_ms=self.budget_ms)
            for user in chunk:
                features[user], degraded[user] = context.features[user], context.degraded
        scored = score_all(scorer, [features[t.user_id] for t in txns], [t.amount for t in txns])
        threshold = self.threshold if scorer.threshold is None else scorer.threshold
        decisions = []
        for txn, source, (score, reasons) in zip(txns, sources, scored, strict=True):
            declined = score >= threshold
            self._count(declined, txn.is_fraud, bool(degraded[txn.user_id]))
            decisions.append(
                Decision(
                    event_time=txn.event_time,
                    decision_id=source,
                    agent="fraud",
                    entity_id=txn.txn_id,
                    action="decline" if declined else "approve",
                    score=score,
                    reasons=reasons,
                    degraded=degraded[txn.user_id],
                    source=source,
                    model=scorer.name,
                )
            )
        return decisions

    def prepare(self, messages: Sequence[Message]) -> None:
        """Decide a consumed batch before its records are handled (the transactional loop's ``prepare``
        hook): ``handle`` then publishes each decision inside its record's span. A record that does not
        decode is kept as its dead-letter reason; a registry that does not answer aborts the batch."""
        self._prepared.clear()
        txns, wheres = [], []
        for message in messages:
            where = (message.topic(), message.partition(), message.offset())
            try:
                txns.append(serde.decode(self.payment_model, message.value()))
            except SchemaError as exc:
                self._prepared[where] = DeadLetter(str(exc))
                continue
            wheres.append(where)
        decisions = self.decide_many(txns, [idempotency_key(*where) for where in wheres])
        self._prepared.update(zip(wheres, decisions, strict=True))

    def handle(self, message: Message, producer: Producer) -> None:
        where = (message.topic(), message.partition(), message.offset())
        decision = self._prepared.pop(where, None)
        if decision is None:  # not prepared in a batch: decided alone
            try:
                txn = serde.decode(self.payment_model, message.value())
            except SchemaError as exc:
                raise DeadLetter(str(exc)) from None
            decision = self.decide(txn, idempotency_key(*where))
        if isinstance(decision, DeadLetter):
            raise decision
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


def one_scoring_thread() -> None:
    """Score on the calling thread alone: the agent scores one row at a time, where scikit-learn's OpenMP
    pool only adds hand-offs (measured on a loaded 2-core machine: 3-7 ms a ``predict_proba`` row, against
    0.2 ms single-threaded). Process-wide, as the agent's process is its own."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


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
    one_scoring_thread()
    context = ContextClient.from_settings(
        settings, ContextConfig(budget_ms=30.0, features_timeout_ms=25.0), vectors=False
    )
    scorer: Scorer = ModelScorer.load(model) if model is not None else CardTestingRules()
    encoder = platform_encoder(settings)
    encoder.check()  # an unregistered decisions schema fails here, in one line, before any decision
    agent = FraudAgent(context, scorer, threshold=threshold, decisions_topic=decisions_topic, encoder=encoder)
    if model_name is None:
        gc.freeze()  # what is loaded now lives as long as the agent: full collections never walk it again
        return agent, context.close
    try:
        view = RegistryView(settings, models_topic).start()
    except BaseException:
        context.close()
        raise
    view.follow(model_name, RegistryFollower(settings, agent, model_name))
    gc.freeze()  # the model and the libraries are loaded: full collections never walk them again

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
    stats = run_fraud_loop(settings, agent, close, consumer_group=consumer_group, worker_id=worker_id,
                           source_topic=source_topic, until_caught_up=until_caught_up)  # fmt: skip
    return agent, stats


def run_fraud_loop(
    settings: Settings,
    agent: FraudAgent,
    close: Callable[[], None],
    *,
    consumer_group: str,
    worker_id: str,
    source_topic: str,
    until_caught_up: bool,
) -> Any:
    """An opened agent in its transactional loop until SIGTERM/SIGINT (or caught up), then ``close``: batches
    decided at once (``prepare``), adaptive (a payment waits for no other: decided with what is queued
    beside it) and at most :data:`DECISION_BATCH`."""
    return run_agent(
        settings, name="fraud", source_topic=source_topic, consumer_group=consumer_group, worker_id=worker_id,
        handle=agent.handle, close=close, batch_size=DECISION_BATCH, until_caught_up=until_caught_up,
        prepare=agent.prepare, fill_wait_s=0,
    )  # fmt: skip
