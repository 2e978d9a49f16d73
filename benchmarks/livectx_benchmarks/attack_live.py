"""The card-testing scenario on the live path: Kafka, the feature worker, Redis, and the fraud agent's
``get_context``, with the model pulled from the model registry.

What production runs, each its own process, on the running stack, with topics, consumer groups and a model
name of the run's own (the example's users renamed ``<tag>-<user>``, so no shared row is touched):

- ``livectx ingest run features`` over the views of ``fraud_features`` (exactly-once, no offline copy),
  reading the run's payments and logins topics;
- the fraud agent as ``livectx agents run fraud --model-name`` runs it
  (:func:`livectx_benchmarks.quota_procs.agent`: its transactional loop, the registry followed live, each
  ``decide`` timed), deciding every payment of the run from the user's online row in Redis;
- this process: it trains the model (another seed of the same traffic), registers and activates it on the
  run's models topic, feeds the back-dated history as fast as the broker takes it, waits until the
  feature worker has applied it, moves the agent's group to the log end, and then feeds the run's
  payments at their pace, event time following the wall clock.

The stale baseline is the article's batch job: the same model, in shadow, over a snapshot of the rows every
15 minutes of event time, kept by :class:`~livectx_benchmarks.attack.EngineReplica` in this process from the
same events (the issue allows the stale snapshot to come from a recomputation; it is a copy of the state
the engine's own code reaches, so the two agents differ only in the age of their features).

The live agent reads whatever the feature worker has made visible when the payment reaches it: the row
usually lacks the payment itself (the worker applies it in parallel), while the model was trained on rows
that include it. Attack bursts are seconds long, so a burst's earlier payments are in the row.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from livectx import serde
from livectx.events import Decision, Event
from livectx.kafka import admin_client, consumer, producer, require_reachable
from livectx.metrics import percentile
from livectx.offsets import end_offsets
from livectx.settings import Settings
from livectx.topics import PLATFORM_TOPICS, TopicSpec, apply
from livectx_benchmarks import quota_procs, soak_procs
from livectx_benchmarks.attack import (
    SERVICE,
    AttackSpec,
    EngineReplica,
    Outcome,
    burst_of,
    scenario_events,
    stale_decisions,
)
from livectx_benchmarks.children import Children
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.features import _produce, _send

LOGINS = "livectx.logins"
PARTITIONS = 3
READY_S = 240.0  # at most, for the feature worker to apply the history and the agent to decide its first payment
#: One decision timed by the agent: wall-clock end, decide ms, event-to-decision ms, why degraded ("" if not).
Timing = tuple[float, float, float, str]
DRAIN_S = 120.0  # at most, after the run's last payment, for the agent to decide every payment


def run_live(settings: Settings, spec: AttackSpec, model: Any) -> Outcome:
    """The scenario on the live path (needs Kafka and Redis: ``livectx stack up``).

    Raises:
        NotReachableError: the broker does not answer.
        RuntimeError: a worker or the agent died or did not get ready in time (its log's tail included).
    """
    require_reachable(settings)
    return _LiveAttack(settings, spec).run(model)


class _Names:
    """The run's own topics (each example topic renamed), consumer groups and model name, under a tag of its
    own: the run touches nothing another run (or the product) uses, and removes what it made."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.topics = {t: f"livectx.bench.attack-{t.split('.')[-1]}.{self.tag}" for t in (TRANSACTIONS, LOGINS)}
        self.payments = self.topics[TRANSACTIONS]
        self.decisions = f"livectx.bench.attack-decisions.{self.tag}"
        self.dlq = f"livectx.bench.attack-dlq.{self.tag}"
        self.models = f"livectx.bench.attack-models.{self.tag}"
        self.groups = {"features": f"bench-attack-features-{self.tag}", "agent": f"bench-attack-agent-{self.tag}"}
        self.model_name = f"attack-{self.tag}"


class _LiveAttack:
    """One live run: its names, its child processes (the feature worker and the agent) and, once the agent
    has started, the event it sets on its first decision and the queue its timings come back on."""

    def __init__(self, settings: Settings, spec: AttackSpec) -> None:
        self.settings, self.spec = settings, spec
        self.names = _Names()
        self.children = Children("the attack run", "livectx-bench-attack-")

    def run(self, model: Any) -> Outcome:
        admin = admin_client(self.settings)
        n = self.names
        topics = [*n.topics.values(), n.decisions, n.dlq]
        specs = [TopicSpec(t, PARTITIONS, {"retention.ms": "3600000"}) for t in topics]
        apply(admin, [*PLATFORM_TOPICS, *specs, TopicSpec(n.models, 1, {"cleanup.policy": "compact"})])
        try:
            self._register(model)
            return self._run(model)
        finally:
            self.children.end_all()
            for future in admin.delete_topics([*topics, n.models]).values():
                with contextlib.suppress(Exception):
                    future.result(30)
            self._drop_artifact()

    def _register(self, model: Any) -> None:
        """The model as a registered, active version on the run's own models topic (what the agent follows)."""
        import joblib

        from livectx.models import registry
        from livectx.repo import current_repo

        path = self.children.logs / "model.joblib"
        joblib.dump(model, path)
        decision = current_repo(self.settings).decision(SERVICE)
        registry.register(
            self.settings, self.names.model_name, "v1", path, feature_service=SERVICE, feature_columns=decision.columns,
            config={"threshold": self.spec.threshold, "generator": "fraud", "trained_on_seed": self.spec.seed + 1},
            topic=self.names.models,
        )  # fmt: skip

    def _drop_artifact(self) -> None:
        """The run's model artifact (its registry topic is gone, so nothing can resolve it any more)."""
        import fsspec

        with contextlib.suppress(Exception):  # never registered, or a store that refuses deletes
            fs, root = fsspec.core.url_to_fs(f"{self.settings.models_url.rstrip('/')}/{self.names.model_name}")
            fs.rm(root, recursive=True)

    def _run(self, model: Any) -> Outcome:
        spec = self.spec
        planned = datetime.now(UTC)  # the run's first event time before the set-up; shifted to the real start
        planned_ms = int(planned.timestamp() * 1000)
        replica = EngineReplica(spec, planned_ms - int(spec.refreshed_before_s * 1000))
        events = scenario_events(spec, planned)
        p = producer(self.settings)
        self._start_features_worker()
        pending = self._feed_history(p, events, replica, planned_ms)
        self._await_group("features", list(self.names.topics.values()), "apply the history")
        self._start_agent(p)
        out, rows = self._feed_run(p, events, replica, pending, planned_ms)
        out.refreshes = replica.refreshes
        out.stale = stale_decisions(model, rows, spec.threshold)
        self._await_group("agent", [self.names.payments], "decide every payment", DRAIN_S)
        samples = self._stop_agent()[1:]  # the first is the warm-up payment's
        decided = self._read_decisions(len(out.event_ms) + 1)
        self._judge(out, decided, samples)
        return out

    def _start_features_worker(self) -> None:
        from livectx.repo import current_repo

        views = ",".join(g.name for g in current_repo(self.settings).service_groups(SERVICE))
        n = self.names
        mapping = [arg for source, target in n.topics.items() for arg in ("--source-topic", f"{source}={target}")]
        command = soak_procs.livectx_command(
            self.settings, "ingest", "run", "features", "--groups", views, "--group", n.groups["features"],
            "--worker-id", n.tag, *mapping, "--dead-letter-topic", n.dlq, "--no-offline",
        )  # fmt: skip
        self.children.command("features", command, {**os.environ, "COLUMNS": "200"})

    def _feed_history(self, p: Any, events: Iterator[tuple[str, Event]], replica: EngineReplica, run_ms: int) -> Any:
        """The back-dated history, as fast as the broker takes it; returns the run's first event."""
        for n, (topic, event) in enumerate(events):
            event = self._own(event)
            if event.event_time_ms >= run_ms:
                return topic, event
            replica.apply(event)
            self._produce(p, topic, event)
            if n % 1000 == 0:
                p.poll(0)
        return None

    def _start_agent(self, p: Any) -> None:
        """The agent's group at the log end (it decides the run, not the history), the agent started with the
        registered model, and one warm-up payment decided: start-up is not what the run measures."""
        from confluent_kafka import TopicPartition

        if p.flush(60):
            raise RuntimeError("the history was not acknowledged by the broker")
        n, children = self.names, self.children
        ends = end_offsets(self.settings, [n.payments])
        mover = consumer(self.settings, n.groups["agent"])
        mover.commit(offsets=[TopicPartition(t, part, end) for (t, part), end in ends.items()], asynchronous=False)
        mover.close()
        self.ready, self.results = children.spawn.Event(), children.spawn.Queue()
        children.process("agent", quota_procs.agent, n.payments, n.decisions, n.groups["agent"], self.ready,
                         self.results, n.model_name, n.models)  # fmt: skip
        _send(p, n.payments, f"{n.tag}-warm", 0)
        p.flush(30)
        failure = f"the fraud agent decided no payment within {READY_S:g} s; see {children.logs}"
        children.wait_set(self.ready, time.monotonic() + READY_S, failure)

    def _feed_run(
        self, p: Any, events: Iterator[tuple[str, Event]], replica: EngineReplica, first: Any, planned_ms: int
    ) -> tuple[Outcome, list[list[float]]]:
        """The run's events at their pace, event time shifted to start now and follow the wall clock."""
        spec = self.spec
        stream = ([first] if first is not None else []) + [(t, self._own(e)) for t, e in events]
        began_ms = int(time.time() * 1000)
        shift = timedelta(milliseconds=began_ms - planned_ms)
        out, rows = Outcome(spec, began_ms), []
        began = time.monotonic()
        for n, (topic, planned_event) in enumerate(stream):
            event = planned_event.model_copy(update={"event_time": planned_event.event_time + shift})
            ahead = (event.event_time_ms - began_ms) / 1000 / spec.speedup - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)  # event time follows the clock (or K times faster)
            self._produce(p, topic, event)
            user = replica.apply(event)
            if user is not None:
                rows.append(replica.stale_row(user, event))
                out.event_ms.append(event.event_time_ms)
                out.burst.append(burst_of(event))
                out.ids.append(event.txn_id)  # type: ignore[attr-defined]
            if n % 50 == 0:
                p.poll(0)
        out.wall_s = time.monotonic() - began
        if p.flush(60):
            raise RuntimeError("the run's payments were not acknowledged by the broker")
        return out, rows

    def _own(self, event: Event) -> Event:
        return event.model_copy(update={"user_id": f"{self.names.tag}-{event.user_id}"})  # type: ignore[attr-defined]

    def _produce(self, p: Any, topic: str, event: Event) -> None:
        key, value, headers = serde.encode(event)
        _produce(p, self.names.topics[topic], key, value, headers)

    def _await_group(self, name: str, topics: list[str], what: str, timeout_s: float = READY_S) -> None:
        targets = end_offsets(self.settings, topics)
        deadline = time.monotonic() + timeout_s
        failure = f"the {name} process did not {what} within {timeout_s:g} s; see {self.children.logs}"
        self.children.wait_caught_up(self.settings, self.names.groups[name], targets, deadline, failure)

    def _stop_agent(self) -> list[Timing]:
        agent = self.children["agent"]
        agent.terminate()  # SIGTERM: the loop ends its transaction and the agent reports, as in production
        try:
            return list(self.results.get(timeout=60))
        except Exception as exc:
            raise RuntimeError(f"the fraud agent reported no timings ({type(exc).__name__})") from None

    def _read_decisions(self, expected: int) -> dict[str, Decision]:
        """Every committed decision on the run's decisions topic, by payment id."""
        reader = consumer(self.settings, f"bench-attack-read-{self.names.tag}")
        reader.subscribe([self.names.decisions])
        found: dict[str, Decision] = {}
        deadline = time.monotonic() + 60
        try:
            while len(found) < expected and time.monotonic() < deadline:
                for message in reader.consume(1000, 0.5):
                    if message.error() is None:
                        decision = serde.decode(Decision, message.value())
                        found[decision.entity_id] = decision
        finally:
            reader.close()
        return found

    def _judge(self, out: Outcome, decided: dict[str, Decision], samples: list[Timing]) -> None:
        """Each payment's live decision (a missing one counts as approved and is reported), the agent's
        decide times, event-to-decision times and degraded share."""
        out.fresh = [decided[i].action == "decline" if i in decided else False for i in out.ids]
        out.latency_ms = [s[1] for s in samples]
        to_decision = [s[2] for s in samples]
        degraded = sum(1 for s in samples if s[3])
        out.extra = {
            "decisions_missing": float(sum(1 for i in out.ids if i not in decided)),
            "event_to_decision_p50_ms": percentile(to_decision, 50) if to_decision else math.nan,
            "event_to_decision_p99_ms": percentile(to_decision, 99) if to_decision else math.nan,
            "decisions_degraded_share": degraded / len(samples) if samples else math.nan,
            "live": 1.0,
        }
