"""The feature worker's Prometheus metrics (names in :mod:`livectx.prometheus`), fed from its callbacks.

Per checkpoint: each written row's freshness (visible minus newest event) into its view's histogram, the
checkpoint's duration and row count, and the events applied since the last one. Per report interval: the
group's lag per partition. Children are bound once per view, and a view's rows go into its histogram in one
:func:`~livectx.prometheus.observe_many` per checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from livectx import prometheus as prom
from livectx.features.incremental import WindowRow


class EngineMetrics:
    def __init__(self, group: str, events_processed: Callable[[], int] = lambda: 0) -> None:
        self._group = group
        self._events_processed = events_processed
        self._counted = 0
        self._freshness: dict[str, Any] = {}
        self._events = prom.EVENTS.labels(group)
        self._checkpoint = prom.CHECKPOINT.labels(group)
        self._rows = prom.CHECKPOINT_ROWS.labels(group)

    def written(self, rows_by_view: dict[str, list[WindowRow]], visible_ms: int, seconds: float) -> None:
        self._checkpoint.observe(seconds)
        for view, rows in rows_by_view.items():
            histogram = self._freshness.get(view)
            if histogram is None:
                histogram = self._freshness[view] = prom.FRESHNESS.labels(view)
            prom.observe_many(histogram, [max(0.0, (visible_ms - row.newest_event_ms) / 1000) for row in rows])
            self._rows.inc(len(rows))
        self.count_events()

    def count_events(self) -> None:
        total = self._events_processed()
        if total > self._counted:
            self._events.inc(total - self._counted)
            self._counted = total

    def lag(self, partitions: Iterable[tuple[str, int, int, int]]) -> int:
        """Set the lag gauge of each (topic, partition, committed, end); returns the total."""
        total = 0
        for topic, partition, committed, end in partitions:
            behind = max(0, end - committed)
            prom.CONSUMER_LAG.labels(self._group, topic, str(partition)).set(behind)
            total += behind
        return total
