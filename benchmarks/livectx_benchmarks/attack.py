"""The seed article's opening story, run: a card-testing attack decided by a fresh agent and a stale twin.

Normal payments flow at a fixed rate with card-testing bursts injected at known times (the example repo's
``fraud`` generator with ``attacks=``, so every burst lands inside the run and each attack payment carries
``is_fraud``). Every event goes through the streaming engine's own window state
(:class:`~livectx_backtest.asof.AsOfFeatures`, the code the feature engine runs). Two instances of the
example's :class:`~livectx_agents.example_fraud.FraudAgent`, with the same model, decide every payment:

- **fresh**: its ``get_context`` reads the online row as the engine holds it right after the payment;
- **stale** (in shadow, on the same payments): the same model over a batch snapshot of those rows,
  refreshed every 15 minutes of event time, as in the article. The job last ran ``refreshed_before_s``
  before the run began: the snapshot is at its freshest during the run, the baseline's best case. Its
  rows are collected during the run and scored in one batch at the end (a shadow's decisions act on
  nothing, so they need not take the live agent's CPU on a 2-core machine; the scores are the same).

Time is honest: with ``paced`` the run's payments are decided at the pace of their event time, from the
first one on (the history before it is back-dated; the run's timestamps start at the call, so they trail
the clock by the seconds the history took to feed, never ahead of it), and ``speedup`` K compresses it
(reported). Unpaced runs (the test) are
deterministic: same seed, same decisions. The feature fetch is in-process (a read of the engine state, not
a Redis round trip: ``livectx bench context`` measures that path), so decision latency here is the
agent's own: context, model and decision.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from livectx.events import Event
from livectx.metrics import percentile
from livectx.models.rows import model_row
from livectx.repo import current_repo
from livectx_benchmarks import example

SERVICE = "fraud_features"  # the example's decision: what the fraud agent reads
LOGIN_SHARE = 0.2  # the fraud generator makes one login per four payments
REFRESH_S = 15 * 60  # the article's batch job


@dataclass(frozen=True)
class AttackSpec:
    """One run of the scenario. Times are seconds of event time; ``attacks`` are offsets into the run."""

    seed: int = 22
    payments_per_s: float = 1000.0
    seconds: float = 60.0
    history_s: float = 120.0
    attacks: tuple[float, ...] = (6.0, 20.0, 34.0, 46.0)
    burst_seconds: tuple[float, float] = (5.0, 12.0)
    users: int = 20_000
    refresh_s: float = REFRESH_S
    refreshed_before_s: float = 60.0
    paced: bool = True
    speedup: float = 1.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.refreshed_before_s > self.history_s:
            raise ValueError(f"the snapshot must be taken inside the history ({self.history_s:g} s)")
        if self.speedup < 1:
            raise ValueError(f"speedup {self.speedup:g} < 1: event time never runs slower than the clock")

    @property
    def events_per_s(self) -> float:
        return self.payments_per_s / (1 - LOGIN_SHARE)


@dataclass
class Outcome:
    """Every payment of the run, columnar, with both agents' decisions and the fresh one's latency."""

    spec: AttackSpec
    run_start_ms: int
    event_ms: list[int] = field(default_factory=list)
    burst: list[str | None] = field(default_factory=list)  # the attack a payment belongs to, None: normal
    ids: list[str] = field(default_factory=list)  # payment ids (the live path matches decisions by them)
    fresh: list[bool] = field(default_factory=list)  # declined
    stale: list[bool] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # the fresh agent's decide(), context included
    wall_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)  # figures of the live path (event to decision, ...)
    refreshes: list[int] = field(default_factory=list)  # event times (ms) the snapshot was taken at


class EngineContext:
    """``get_context`` over in-process rows: the fresh engine state or a batch snapshot of it.

    Shaped as :class:`~livectx_agents.context.ContextClient` answers (``features``, ``freshness``,
    ``degraded``), so the agent under test is the production agent class, unchanged."""

    def __init__(self, rows: Mapping[str, dict[str, Any]], columns: Sequence[str]) -> None:
        self.rows = rows
        self.columns = tuple(columns)

    def get_context(self, entities: Sequence[str], feature_service: str, budget_ms: float = 0) -> Any:
        from livectx_agents.context import Context

        empty = dict.fromkeys(self.columns, 0)
        features = {e: self.rows.get(e, empty) for e in entities}
        return Context(list(entities), features, [], {"features": {}})


def generator_options(spec: AttackSpec, attacks: Sequence[float]) -> dict[str, Any]:
    return {"users": spec.users, "attacks": list(attacks), "burst_seconds": spec.burst_seconds}


def train_model(spec: AttackSpec, seconds: float = 150.0, every_s: float = 5.0) -> Any:
    """The fraud model both agents use, fitted on another seed's history of the same traffic with a burst
    every ``every_s`` seconds (point-in-time rows from the engine's state: no value from the future)."""
    from livectx_backtest.asof import AsOfFeatures
    from sklearn.ensemble import HistGradientBoostingClassifier

    decision = current_repo().decision(SERVICE)
    asof = AsOfFeatures(decision, decision.columns)
    attacks = [every_s * (n + 1) for n in range(int(seconds / every_s) - 1)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    count = int(seconds * spec.events_per_s)
    stream = example.events("fraud", spec.seed + 1, start, spec.events_per_s, count, **generator_options(spec, attacks))
    asof.feed_events(e for _t, e in stream)
    rows, labels = asof.scored.rows, [int(y) for y in asof.scored.label]
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(rows, labels)


class EngineReplica:
    """The engine's window state over the scenario's events, in this process, and the article's batch job:
    a snapshot of the online rows every ``refresh_s`` of event time, first at ``refresh_ms``.

    ``latest`` is what the fresh in-process agent reads; ``stale_row`` is the stale agent's model input."""

    def __init__(self, spec: AttackSpec, refresh_ms: int) -> None:
        from livectx_backtest.asof import AsOfFeatures

        self.spec = spec
        self.decision = current_repo().decision(SERVICE)
        self.columns = self.decision.columns
        self.asof = AsOfFeatures(self.decision, self.columns)
        self.latest: dict[str, dict[str, Any]] = {}
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.refresh_ms = refresh_ms
        self.refreshes: list[int] = []  # event times (ms) the snapshot was taken at
        self._n = 0

    def apply(self, event: Event) -> str | None:
        """One event through the window state (the batch job first, when its time has come); the paying
        user for a payment, None for a login."""
        if event.event_time_ms >= self.refresh_ms:  # the batch job: a copy of the online rows as of now
            self.snapshot.clear()
            self.snapshot.update(self.latest)
            self.refreshes.append(self.refresh_ms)
            self.refresh_ms += int(self.spec.refresh_s * 1000)
        before = len(self.asof.scored)
        self.asof.apply(event, self._n, self._n)
        self._n += 1
        if len(self.asof.scored) == before:
            return None  # a login: only the engine's state moves
        user = self.asof.scored.entity[-1]
        self.latest[user] = dict(zip(self.columns, self.asof.scored.rows[-1], strict=False))
        return user

    def stale_row(self, user: str, payment: Event) -> list[float]:
        """The stale agent's model input: the snapshot's features, then this payment's own inputs."""
        return model_row(self.snapshot.get(user, {}), self.decision.input_values(payment), self.columns)


def scenario_events(spec: AttackSpec, run_start: datetime) -> Iterator[tuple[str, Event]]:
    """``(topic, event)`` of the run: the back-dated history, then the run's seconds with its bursts."""
    history_start = run_start - timedelta(seconds=spec.history_s)
    end_ms = int(run_start.timestamp() * 1000) + int(spec.seconds * 1000)
    attacks = [spec.history_s + a for a in spec.attacks if a < spec.seconds]
    stream = example.events("fraud", spec.seed, history_start, spec.events_per_s, **generator_options(spec, attacks))
    return itertools.takewhile(lambda te: te[1].event_time_ms < end_ms, stream)


def run_scenario(spec: AttackSpec, model: Any, start: datetime | None = None) -> Outcome:
    """Run the scenario in this process; ``start`` is the run's first event time (default: now).

    The model scores in one thread: scikit-learn's OpenMP pool costs milliseconds a row on a loaded
    2-core machine, more than the whole decision otherwise."""
    from livectx_agents.example_fraud import FraudAgent, ModelScorer
    from threadpoolctl import threadpool_limits

    run_start = start or datetime.now(UTC)
    run_start_ms = int(run_start.timestamp() * 1000)
    replica = EngineReplica(spec, run_start_ms - int(spec.refreshed_before_s * 1000))
    scorer = ModelScorer(model, name="fraud:attack-scenario", columns=replica.columns)
    fresh = FraudAgent(EngineContext(replica.latest, replica.columns), scorer, threshold=spec.threshold)  # type: ignore[arg-type]
    shadow: list[list[float]] = []  # the stale agent's model rows: snapshot features, this payment's inputs
    out = Outcome(spec, run_start_ms)
    began = time.monotonic()
    with threadpool_limits(1):
        for _topic, event in scenario_events(spec, run_start):
            user = replica.apply(event)
            ts = event.event_time_ms
            if user is None or ts < run_start_ms:
                continue  # a login, or back-dated history: windows fill, nobody decides
            if not out.event_ms:
                began = time.monotonic()  # the run's clock starts at its first payment, after the history
            if spec.paced:
                ahead = (ts - run_start_ms) / 1000 / spec.speedup - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)  # event time follows the clock (or K times faster)
            t0 = time.perf_counter()
            fresh_decision = fresh.decide(event, "attack-scenario")
            out.latency_ms.append((time.perf_counter() - t0) * 1000)
            shadow.append(replica.stale_row(user, event))
            out.event_ms.append(ts)
            out.burst.append(burst_of(event))
            out.fresh.append(fresh_decision.action == "decline")
    out.wall_s = time.monotonic() - began
    out.refreshes = replica.refreshes
    out.stale = stale_decisions(model, shadow, spec.threshold)
    return out


def stale_decisions(model: Any, rows: list[list[float]], threshold: float) -> list[bool]:
    """The stale agent's declines, scored in one batch (a shadow acts on nothing: same scores, less CPU)."""
    return [bool(p >= threshold) for p in model.predict_proba(rows)[:, 1]] if rows else []


def burst_of(payment: Any) -> str | None:
    """Ground truth: an attack payment's burst (its ``txn_id`` is ``t<burst>a<k>``), None for normal ones."""
    return payment.txn_id.split("a")[0] if payment.is_fraud else None


def figures(out: Outcome) -> dict[str, float]:
    """The report's figures (``detect_ms``: event time from a burst's first payment to its first decline)."""
    attack = [i for i, b in enumerate(out.burst) if b is not None]
    normal = [i for i, b in enumerate(out.burst) if b is None]
    later = _after_first(out, 3)
    detect = {name: _detect_ms(out, getattr(out, name)) for name in ("fresh", "stale")}
    return {
        "payments": float(len(out.burst)),
        "attack_payments": float(len(attack)),
        "bursts": float(len({out.burst[i] for i in attack})),
        "attack_decline_rate_fresh": _rate(out.fresh, attack),
        "attack_decline_rate_stale": _rate(out.stale, attack),
        "attack_decline_rate_fresh_after_3": _rate(out.fresh, later),
        "attack_decline_rate_stale_after_3": _rate(out.stale, later),
        "detect_ms_p50": percentile(detect["fresh"], 50) if detect["fresh"] else float("nan"),
        "bursts_detected_fresh": float(len(detect["fresh"])),
        "bursts_detected_stale": float(len(detect["stale"])),
        "decision_p50_ms": percentile(out.latency_ms, 50) if out.latency_ms else float("nan"),
        "decision_p99_ms": percentile(out.latency_ms, 99) if out.latency_ms else float("nan"),
        "false_positive_rate": _rate(out.fresh, normal),
        "false_positive_rate_stale": _rate(out.stale, normal),
        "payments_per_s": len(out.burst) / out.wall_s if out.wall_s else float("nan"),
        "speedup": out.spec.speedup,
        **out.extra,
    }


def bursts(out: Outcome) -> dict[str, list[int]]:
    """Each burst's payments (indexes into the outcome), in event-time order."""
    found: dict[str, list[int]] = {}
    for i, b in enumerate(out.burst):
        if b is not None:
            found.setdefault(b, []).append(i)
    return found


def _after_first(out: Outcome, n: int) -> list[int]:
    return [i for members in bursts(out).values() for i in members[n:]]


def _detect_ms(out: Outcome, declined: list[bool]) -> list[float]:
    """Per burst that was declined at all: ms of event time from its first payment to its first decline."""
    times = []
    for members in bursts(out).values():
        hit = next((i for i in members if declined[i]), None)
        if hit is not None:
            times.append(float(out.event_ms[hit] - out.event_ms[members[0]]))
    return times


def _rate(declined: list[bool], indexes: list[int]) -> float:
    return sum(declined[i] for i in indexes) / len(indexes) if indexes else float("nan")
