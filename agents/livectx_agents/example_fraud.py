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

This module is the agent and its loop. The scorers are :mod:`.example_fraud_scoring`, the registry
following :mod:`.example_fraud_registry`, the figures :mod:`.example_fraud_stats`; their names are
re-exported here, where the CLI, tests and benchmarks import them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livectx import serde, topics, tracing
from livectx.errors import LivectxError, SchemaError
from livectx.events import Decision, Event
from livectx.models import RegistryView
from livectx.models.version import check_name
from livectx.prometheus import MODEL_IN_USE
from livectx.schemas.platform import platform_encoder
from livectx.schemas.serializers import RegistryEncoder
from livectx.settings import Settings
from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.example_fraud_registry import RegistryFollower as RegistryFollower
from livectx_agents.example_fraud_scoring import MODEL_FEATURES as MODEL_FEATURES
from livectx_agents.example_fraud_scoring import CardTestingRules as CardTestingRules
from livectx_agents.example_fraud_scoring import ModelScorer as ModelScorer
from livectx_agents.example_fraud_scoring import Scored as Scored
from livectx_agents.example_fraud_scoring import Scorer as Scorer
from livectx_agents.example_fraud_scoring import model_row as model_row
from livectx_agents.example_fraud_scoring import one_scoring_thread as one_scoring_thread
from livectx_agents.example_fraud_scoring import score_all as score_all
from livectx_agents.example_fraud_stats import FraudStats as FraudStats
from livectx_agents.idempotency import idempotency_key
from livectx_agents.loop import DeadLetter, run_agent

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)

#: The example repo's payments topic and source (this agent belongs to the example domain).
PAYMENTS_TOPIC = "livectx.transactions"
PAYMENT_SOURCE = "transaction"


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
            self.stats.record(declined, txn.is_fraud, bool(degraded[txn.user_id]))
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
