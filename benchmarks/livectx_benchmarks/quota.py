"""``quota``: a noisy neighbour held back by its tenant's Kafka quota (issue 15, item 4).

On the secured stack (see :mod:`livectx_benchmarks.quota_setup`), the live path runs as in the demo:
payments at a steady ``rate`` from a feeder process, the streaming feature engine over them (the payment
views of ``fraud_features``, exactly-once, in this process) and the fraud agent in its own process
(rules, its transactional loop). Before they start, ``history`` events of the example's fraud generator
are written to the same payments topic: the engine works through them first (its online rows hold the
history's features, as in production), the agent's group is moved to the end (``livectx replay
reset-offsets``' code), so it decides live payments only.

Three measured windows of ``seconds`` each, every one after ``settle`` seconds of the new situation and
once the engine and the agent have caught up with the log:

1. ``quiet``: the live path alone;
2. ``unthrottled``: plus the research team's replay (its own process and principal, reading the whole
   payments log from the beginning as fast as the broker serves it, starting over at the end), the
   research tenant applied without a quota;
3. ``quota``: the same replay, still running, after the tenant is applied with its declared
   ``consumer_byte_rate`` (``quota_bytes``) through ``tenants apply``'s path;

then ``quiet_again``, with the replay stopped: on a shared machine, how far the quiet figures drift over
one run (reported beside the others; the ratios are to the first quiet window).

Per window: the agent's decide time (``get_context`` of the user's features + the score, per decision),
event-to-decision time, feature freshness (per online row written: visible minus its newest event time,
the engine's own :class:`FreshnessStats`, as ``bench features`` measures it), and the replay's bytes/s
and records/s. Target (issue 15): under the quota, both p99s within 1.5x of quiet.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from livectx_ingest.streaming.worker import run_features_worker

from livectx.errors import LivectxError
from livectx.kafka import admin_client, require_reachable
from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.settings import Settings
from livectx.tier.reset import execute_reset, plan_reset
from livectx.topics import PLATFORM_TOPICS, TopicSpec, apply
from livectx_benchmarks import quota_procs
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.features import _produce_scenario, payment_groups
from livectx_benchmarks.quota_figures import PHASES, QUIET_AGAIN, TARGET_RATIO, Phase, assign_decisions, figures
from livectx_benchmarks.quota_setup import (
    RESEARCH_PRINCIPAL,
    apply_quota,
    apply_tenant,
    grant_read,
    research_tenant,
    secrets_dir,
    secured_stack,
)
from livectx_benchmarks.result import BenchResult

RATE = 1_000.0  # live payments/s: the 2-core machine runs the broker, Redis, engine, agent and replay
SECONDS = 40.0  # per measured window
SETTLE = 8.0  # before each window: the replay at full speed, the quota in force
HISTORY = 300_000  # fraud-generator events (~80% payments) in the log before the live traffic
QUOTA_BYTES = 1_048_576  # the research tenant's consumer_byte_rate (bytes/s)
PARTITIONS = 3
CATCH_UP_S = 60.0  # at most, before a window: the engine and the agent through the backlog


def run(
    settings: Settings,
    scale: float = 1.0,
    seconds: float = SECONDS,
    rate: float = RATE,
    history: float = HISTORY,
    quota_bytes: float = QUOTA_BYTES,
    settle: float = SETTLE,
) -> BenchResult:
    """The three windows on a secured stack (the configured one, or a private one started here).

    Raises:
        LivectxError: an option out of range (one line, before anything starts).
    """
    for name, value, low in (("seconds", seconds, 1.0), ("rate", rate, 1.0), ("quota_bytes", quota_bytes, 1.0),
                             ("history", history, 0.0), ("settle", settle, 0.0)):  # fmt: skip
        if not value >= low:
            raise LivectxError(f"bench quota: -o {name}={value:g} must be at least {low:g}")
    window = max(3.0, seconds * scale)
    with secured_stack(settings) as (secured, where):
        require_reachable(secured)
        settle = max(1.0, settle * min(1.0, scale))
        bench = _Run(secured, int(max(2_000, history * scale)), rate, int(quota_bytes), settle)
        phases = bench.measure(window)
    result = BenchResult("quota")
    result.figures = {
        **figures(phases, quota_bytes),
        "rate": rate,
        "seconds": window,
        "history_payments": float(bench.history_payments),
        "quota_consumer_byte_rate_live": bench.live_quota,
    }
    verdict = "met" if result.figures["target_met"] else "NOT met"
    degraded = "; ".join(
        f"{name} " + (", ".join(f"{n} {kind}" for kind, n in sorted(p.degraded.items())) or "none")
        for name, p in phases.items()
    )
    result.notes += [
        f"on {where}; {len(payment_groups())} payment feature groups, exactly-once; the fraud agent's rules "
        f"(budget 30 ms); {rate:g} live payments/s over {window:g} s per window, {settle:g} s settling before each",
        f"the research replay read {bench.history_payments:,} history payments and the live ones as principal "
        f"{RESEARCH_PRINCIPAL}, from the beginning, over and over; quota consumer_byte_rate={int(quota_bytes):,} B/s",
        f"decisions on degraded context (a fast decision without features: read decide p99 with it): {degraded}",
        f"target: with the quota both p99s within {TARGET_RATIO}x of quiet: {verdict} "
        f"(decision {result.figures['decision_p99_ratio_quota']:.2f}x, "
        f"freshness {result.figures['freshness_p99_ratio_quota']:.2f}x)",
    ]
    return result


class _Freshness:
    """Collects the engine's freshness samples into the window in progress (none between windows).

    Called on the engine's thread after every write; it empties the worker's own sample list each time,
    so a long run never reaches the list's cap and no window sees another's rows."""

    def __init__(self) -> None:
        self.current: Phase | None = None

    def __call__(self, stats: Any) -> None:
        ages = stats.freshness_ms
        phase = self.current
        if phase is not None:
            phase.freshness_ms.extend(ages)
        ages.clear()


class _Names:
    """The run's own payments and decisions topics and consumer groups, under a tag of its own: the replay
    reads only this run's log, and the run removes what it made."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.topic = f"livectx.bench.quota.{self.tag}"
        self.decisions = f"livectx.bench.quota-decisions.{self.tag}"
        self.engine_group, self.agent_group = f"bench-quota-{self.tag}", f"bench-quota-fraud-{self.tag}"


class _Run:
    """One quota run: its names, its options, the spawn context of its processes, and what it reports beside
    the windows (the history's payments, the quota the broker holds)."""

    def __init__(self, settings: Settings, history: int, rate: float, quota_bytes: int, settle: float) -> None:
        self.settings, self.rate, self.settle = settings, rate, settle
        self.names = _Names()
        self.tenant = research_tenant(quota_bytes)
        self.history = history
        self.history_payments = 0
        self.live_quota = 0.0
        self.spawn = multiprocessing.get_context("spawn")
        self.freshness = _Freshness()
        self.error: BaseException | None = None

    def measure(self, seconds: float) -> dict[str, Phase]:
        admin = admin_client(self.settings)
        names = [self.names.topic, self.names.decisions]
        apply(admin, [*PLATFORM_TOPICS, *(TopicSpec(t, PARTITIONS, {"retention.ms": "3600000"}) for t in names)])
        try:
            return self._measure(seconds)
        finally:
            for future in admin.delete_topics(names).values():
                future.result(30)

    def _measure(self, seconds: float) -> dict[str, Phase]:
        n = self.names
        self.history_payments = _produce_scenario(self.settings, n.topic, self.history, n.tag)
        caught_up = end_offsets(self.settings, [n.topic])
        execute_reset(self.settings, n.agent_group, plan_reset(self.settings, n.agent_group, n.topic,
                                                                datetime.now(UTC)))  # fmt: skip
        apply_tenant(self.settings, self.tenant)
        grant_read(self.settings, RESEARCH_PRINCIPAL, n.topic)
        stop_feed, sent = self.spawn.Event(), self.spawn.Value("d", 0.0)
        agent_ready, agent_results = self.spawn.Event(), self.spawn.Queue()
        feeder = self.spawn.Process(target=quota_procs.feed, args=(n.topic, self.rate, n.tag, stop_feed, sent))
        agent = self.spawn.Process(
            target=quota_procs.agent, args=(n.topic, n.decisions, n.agent_group, agent_ready, agent_results)
        )
        phases: dict[str, Phase] = {}
        stop_engine = threading.Event()
        controller = threading.Thread(
            target=self._control,
            args=(seconds, caught_up, agent, agent_ready, sent, phases, stop_engine),
            daemon=True,
        )
        agent.start()
        feeder.start()
        controller.start()
        samples: list[tuple[float, float, float, str]] = []
        try:
            run_features_worker(
                self.settings, groups=payment_groups(), consumer_group=n.engine_group, worker_id="q",
                topic_map={TRANSACTIONS: n.topic}, write_offline=False,
                dead_letter_topic=f"livectx.bench.dlq.{n.tag}", on_progress=self.freshness, stop=stop_engine,
            )  # fmt: skip
        finally:
            stop_engine.set()
            stop_feed.set()
            if agent.is_alive():
                agent.terminate()  # SIGTERM: the agent's loop stops as `agents run fraud` does, then reports
                try:
                    samples = agent_results.get(timeout=60)
                except Exception:  # the agent died: the checks below report it
                    samples = []
            for process in (agent, feeder):
                process.join(30)
                if process.is_alive():
                    process.kill()
            controller.join(60)
        if self.error is not None:
            raise self.error
        assign_decisions(phases, samples)
        missing = [name for name in PHASES if not phases.get(name) or not phases[name].decide_ms]
        if missing:
            raise RuntimeError(f"no decision was timed in the {', '.join(missing)} window(s): did the agent run?")
        return phases

    def _control(self, seconds, caught_up, agent, agent_ready, sent, phases, stop_engine) -> None:  # type: ignore[no-untyped-def]
        """The windows, on their own thread while the engine runs on the main one; stops the engine."""
        counters = self.spawn.Array("d", 3, lock=False)
        stop_replay, replay_ready = self.spawn.Event(), self.spawn.Event()
        replay = self.spawn.Process(
            target=quota_procs.replay,
            args=(self.names.topic, f"research.replay-{self.names.tag}", secrets_dir(self.settings), RESEARCH_PRINCIPAL,
                  counters, stop_replay, replay_ready),
        )  # fmt: skip
        try:
            if not wait_for_caught_up(self.settings, self.names.engine_group, caught_up, timeout_s=300):
                raise RuntimeError("the feature engine did not work through the history within 5 minutes")
            if not agent_ready.wait(120) or not agent.is_alive():
                raise RuntimeError("the fraud agent made no decision within 2 minutes")
            phases["quiet"] = self._window("quiet", seconds, sent, counters)
            replay.start()
            if not replay_ready.wait(120):
                raise RuntimeError("the research replay read nothing within 2 minutes")
            phases["unthrottled"] = self._window("unthrottled", seconds, sent, counters)
            quotas = apply_quota(self.settings, self.tenant)
            self.live_quota = quotas.get("consumer_byte_rate", 0.0)
            phases["quota"] = self._window("quota", seconds, sent, counters)
            _stop(replay, stop_replay)
            phases[QUIET_AGAIN] = self._window(QUIET_AGAIN, seconds, sent, counters)
        except BaseException as exc:  # re-raised on the main thread
            self.error = exc
        finally:
            _stop(replay, stop_replay)
            stop_engine.set()

    def _window(self, name: str, seconds: float, sent: Any, counters: Any) -> Phase:
        """After ``settle``, and once the engine and the agent have worked through what the log held then
        (a backlog left by the previous window is not measured in this one): ``seconds`` of samples."""
        time.sleep(self.settle)  # pacing: the new situation in its steady state
        phase = Phase(name)
        deadline = time.monotonic() + CATCH_UP_S
        targets = end_offsets(self.settings, [self.names.topic])
        for group in (self.names.engine_group, self.names.agent_group):
            wait_for_caught_up(self.settings, group, targets, timeout_s=max(0.0, deadline - time.monotonic()))
        phase.catch_up_s = CATCH_UP_S - (deadline - time.monotonic())
        sent0, replay0 = sent.value, list(counters)
        began = time.time()
        self.freshness.current = phase
        time.sleep(seconds)  # the measured window
        self.freshness.current = None
        phase.started, phase.seconds = began, time.time() - began
        phase.live_events = sent.value - sent0
        phase.replay_bytes = counters[quota_procs.REPLAY_BYTES] - replay0[quota_procs.REPLAY_BYTES]
        phase.replay_records = counters[quota_procs.REPLAY_RECORDS] - replay0[quota_procs.REPLAY_RECORDS]
        return phase


def _stop(process: Any, stop: Any) -> None:
    stop.set()
    if process.is_alive():
        process.join(30)
        if process.is_alive():
            process.kill()
