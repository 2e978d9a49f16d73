"""The figures of ``livectx bench quota`` from what its three phases collected.

Pure (no services), so a unit test pins the names and the arithmetic: each phase's p50/p99 of the
fraud agent's decide time and of feature freshness, the replay's achieved rate, and the ratios to the
quiet phase that the target (issue 15: within 1.5x of quiet with the quota) is read from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from livectx.metrics import percentile

PHASES = ("quiet", "unthrottled", "quota")
#: A last quiet window after the replay stopped: how much the machine itself drifted over the run (its
#: figures are reported; the ratios stay against the first quiet window).
QUIET_AGAIN = "quiet_again"
#: Issue 15: with the research tenant under its quota, both p99s within this factor of quiet.
TARGET_RATIO = 1.5


@dataclass
class Phase:
    """What one measured window collected."""

    name: str
    #: the window: wall-clock start (epoch s) and length
    started: float = 0.0
    seconds: float = 0.0
    #: the fraud agent's ``decide`` (feature fetch + score), per decision
    decide_ms: list[float] = field(default_factory=list)
    #: event time (the feeder's wall clock when it sent the payment) to the decision made, per decision
    decision_e2e_ms: list[float] = field(default_factory=list)
    #: decisions made on degraded context, by reason kind (a feature read over its timeout, the breaker
    #: open after such reads, an error)
    degraded: dict[str, int] = field(default_factory=dict)
    #: per online row written by the feature engine: visible minus its newest event time
    freshness_ms: list[float] = field(default_factory=list)
    #: the research replay's bytes received from the broker (librdkafka's rxbytes) and records read
    replay_bytes: float = 0.0
    replay_records: float = 0.0
    #: live payments the feeder sent during the window
    live_events: float = 0.0
    #: before the window: seconds until the engine and the agent had caught up with the log
    catch_up_s: float = 0.0


def assign_decisions(phases: Mapping[str, Phase], samples: Iterable[tuple[float, float, float, str]]) -> None:
    """Each timed decision ``(wall-clock end, decide ms, event-to-decision ms, degraded reason or "")``
    into the window it ended in; decisions between windows are left out."""
    ordered = sorted(phases.values(), key=lambda p: p.started)
    for at, took_ms, e2e_ms, degraded in samples:
        for phase in ordered:
            if phase.started <= at < phase.started + phase.seconds:
                phase.decide_ms.append(took_ms)
                phase.decision_e2e_ms.append(e2e_ms)
                if degraded:
                    phase.degraded[degraded] = phase.degraded.get(degraded, 0) + 1
                break


def _p(samples: list[float], q: float) -> float:
    return percentile(samples, q) if samples else math.nan


def _ratio(value: float, quiet: float) -> float:
    return value / quiet if quiet > 0 and not math.isnan(value) else math.nan


def figures(phases: Mapping[str, Phase], quota_bytes: float) -> dict[str, float]:
    """Flat figures: ``<what>_<stat>_<phase>`` for each phase, then the ratios to quiet and the verdict.

    Raises:
        KeyError: a phase of :data:`PHASES` is missing.
    """
    out: dict[str, float] = {}
    for name in (*PHASES, *([QUIET_AGAIN] if QUIET_AGAIN in phases else [])):
        phase = phases[name]
        seconds = phase.seconds if phase.seconds > 0 else math.nan
        out[f"decision_p50_ms_{name}"] = _p(phase.decide_ms, 50)
        out[f"decision_p99_ms_{name}"] = _p(phase.decide_ms, 99)
        out[f"decision_e2e_p99_ms_{name}"] = _p(phase.decision_e2e_ms, 99)
        out[f"freshness_p50_ms_{name}"] = _p(phase.freshness_ms, 50)
        out[f"freshness_p99_ms_{name}"] = _p(phase.freshness_ms, 99)
        out[f"decisions_{name}"] = float(len(phase.decide_ms))
        degraded = sum(phase.degraded.values())
        out[f"degraded_share_{name}"] = degraded / len(phase.decide_ms) if phase.decide_ms else math.nan
        out[f"freshness_rows_{name}"] = float(len(phase.freshness_ms))
        out[f"live_events_per_s_{name}"] = phase.live_events / seconds
        out[f"catch_up_s_{name}"] = phase.catch_up_s
        out[f"replay_bytes_per_s_{name}"] = phase.replay_bytes / seconds
        out[f"replay_events_per_s_{name}"] = phase.replay_records / seconds
    for loaded in ("unthrottled", "quota"):
        for kind in ("decision", "freshness", "decision_e2e"):
            quiet = out[f"{kind}_p99_ms_quiet"]
            out[f"{kind}_p99_ratio_{loaded}"] = _ratio(out[f"{kind}_p99_ms_{loaded}"], quiet)
    out["quota_consumer_byte_rate"] = float(quota_bytes)
    out["replay_share_of_quota"] = _ratio(out["replay_bytes_per_s_quota"], float(quota_bytes))
    out["target_ratio"] = TARGET_RATIO
    out["target_met"] = float(target_met(out))
    return out


def target_met(figures: Mapping[str, float]) -> bool:
    """Both p99s under the quota within :data:`TARGET_RATIO` of quiet (a missing figure is not met)."""
    ratios = (figures["decision_p99_ratio_quota"], figures["freshness_p99_ratio_quota"])
    return all(not math.isnan(r) and r <= TARGET_RATIO for r in ratios)
