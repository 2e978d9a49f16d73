"""The workers' own ``/metrics``, scraped by the dashboard: rates, freshness quantiles, models in use.

The dashboard must work without Prometheus, so it does the little Prometheus would do for it: it reads
the file_sd target files every worker writes (:mod:`livectx.prometheus_targets`), scrapes each target,
and keeps a short history. Freshness p50/p99 per view come from the histogram's bucket increments between
two scrapes (the first scrape of a target counts everything since the target started), interpolated
within a bucket as PromQL's ``histogram_quantile`` does, so the chart and a Grafana panel agree.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FRESHNESS = "livectx_feature_freshness_seconds"
EVENTS = "livectx_events_processed_total"
DEAD_LETTERS = "livectx_dead_letters_total"
MODEL_INFO = "livectx_model_version_info"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class Target:
    """One scraped process: where, and the labels its target file gives it (job, consumer_group, worker_id)."""

    address: str
    labels: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.labels.get('job', 'livectx')}@{self.address}"


def read_targets(folder: Path) -> list[Target]:
    """Every target in the file_sd files of ``folder``; a half-written or foreign file is skipped."""
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            groups = json.loads(path.read_text())
            found += [Target(a, dict(g.get("labels", {}))) for g in groups for a in g.get("targets", [])]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.debug("skipping target file %s: %s", path, exc)
    return found


def parse(body: str) -> Samples:
    """A ``/metrics`` body as ``{(sample name, sorted labels): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def scrape(target: Target, timeout_s: float = 1.0) -> Samples:
    with urllib.request.urlopen(f"http://{target.address}/metrics", timeout=timeout_s) as response:
        return parse(response.read().decode())


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """``histogram_quantile``: ``q`` of cumulative ``(le, count)`` buckets; None when they hold nothing."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):  # in the open top bucket: the highest finite bound, as Prometheus answers
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = le, count
    return lower


def buckets_by_view(samples: Samples) -> dict[str, dict[float, float]]:
    """The freshness histogram's cumulative bucket counts per view."""
    out: dict[str, dict[float, float]] = {}
    for (name, labels), value in samples.items():
        if name == f"{FRESHNESS}_bucket":
            tags = dict(labels)
            out.setdefault(tags.get("view", "?"), {})[float(tags["le"])] = value
    return out


def sum_by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """``sum by (label) (name)`` over one scrape."""
    out: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


@dataclass
class MetricsHistory:
    """The last ``keep`` scrapes of every target, and what the dashboard charts from them."""

    targets_dir: Path
    keep: int = 150
    fetch: Callable[[Target], Samples] = scrape
    clock: Callable[[], float] = time.time
    freshness: dict[str, deque[dict[str, float]]] = field(default_factory=dict)
    rates: dict[str, deque[dict[str, float]]] = field(default_factory=dict)
    up: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: dict[str, Samples] = field(default_factory=dict)
    _last: dict[str, tuple[float, Samples]] = field(default_factory=dict)

    def poll(self) -> None:
        """Scrape every registered target once and append one point per view and per group."""
        now = self.clock()
        targets = read_targets(self.targets_dir)
        increments: dict[str, dict[float, float]] = {}
        self.up = {}
        for target in targets:
            try:
                samples = self.fetch(target)
            except (OSError, ValueError) as exc:  # a dead worker's stale file, or one starting up
                self.up[target.name] = {"up": False, "labels": target.labels, "error": str(exc)[:120]}
                continue
            self.up[target.name] = {"up": True, "labels": target.labels}
            previous = self._last.get(target.name)
            self._increments(samples, previous[1] if previous else {}, increments)
            if previous is not None:
                self._rates(target, samples, previous, now)
            self._last[target.name] = (now, samples)
            self.latest[target.name] = samples
        for gone in set(self.latest) - {t.name for t in targets}:
            self.latest.pop(gone, None)
            self._last.pop(gone, None)
        for view, buckets in increments.items():
            p50, p99 = quantile(0.5, buckets.items()), quantile(0.99, buckets.items())
            if p50 is not None:
                point = {"t": now, "p50": p50, "p99": p99, "rows": max(buckets.values())}
                self.freshness.setdefault(view, deque(maxlen=self.keep)).append(point)

    @staticmethod
    def _increments(samples: Samples, previous: Samples, into: dict[str, dict[float, float]]) -> None:
        before = buckets_by_view(previous)
        for view, buckets in buckets_by_view(samples).items():
            old = before.get(view, {})
            total = into.setdefault(view, {})
            for le, count in buckets.items():
                # A counter that went down is a restarted process: count it from zero.
                delta = count - old.get(le, 0.0) if count >= old.get(le, 0.0) else count
                total[le] = total.get(le, 0.0) + delta

    def _rates(self, target: Target, samples: Samples, previous: tuple[float, Samples], now: float) -> None:
        elapsed = now - previous[0]
        if elapsed <= 0:
            return
        old = sum_by(previous[1], EVENTS, "group")
        for group, value in sum_by(samples, EVENTS, "group").items():
            rate = max(value - old.get(group, 0.0), 0.0) / elapsed
            self.rates.setdefault(group, deque(maxlen=self.keep)).append({"t": now, "events_per_s": rate})

    def dead_letter_counts(self) -> dict[str, float]:
        """Dead letters by reason kind, summed over the running workers (since each one started)."""
        out: dict[str, float] = {}
        for samples in self.latest.values():
            for reason, value in sum_by(samples, DEAD_LETTERS, "reason").items():
                out[reason] = out.get(reason, 0.0) + value
        return out

    def models_in_use(self) -> list[dict[str, str]]:
        """Which agent process decides with which model version (``livectx_model_version_info``)."""
        rows = []
        for name, samples in self.latest.items():
            labels = self.up.get(name, {}).get("labels", {})
            for (sample, tags), value in samples.items():
                if sample == MODEL_INFO and value == 1:
                    rows.append({**dict(tags), "job": labels.get("job", ""), "worker_id": labels.get("worker_id", "")})
        return sorted(rows, key=lambda r: (r.get("agent", ""), r.get("model", ""), r.get("version", "")))

    def snapshot(self) -> dict[str, Any]:
        return {
            "targets": self.up,
            "freshness": {view: list(points) for view, points in sorted(self.freshness.items())},
            "rates": {group: list(points) for group, points in sorted(self.rates.items())},
            "dead_letters_by_reason": self.dead_letter_counts(),
            "models_in_use": self.models_in_use(),
        }
