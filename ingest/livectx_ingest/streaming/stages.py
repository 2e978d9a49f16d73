"""Where an event's freshness goes: its age split into the stages between produce and online-visible.

Freshness (event time to the commit that made its row visible) is one number; when it is too high, the
question is which stage holds the event. :class:`StageClock` is the engine's optional observer
(``FeatureEngine(stages=...)``): it stamps each consumed record with the wall clock at three points of the
engine's loop and reads two stamps the record carries, giving per record:

- ``produce``: its creation (``created_ms(message)``, e.g. the event time, or a header the producer set)
  to its append on the broker (the record's timestamp, when the topic's ``message.timestamp.type`` is
  ``LogAppendTime``);
- ``fetch``: broker append to the engine's ``consume`` returning it (fetch wait, the client's queue);
- ``apply``: consumed to applied to window state (the records pooled before a batch, and the batch itself);
- ``commit``: applied to the checkpoint's commit returning (the wait for the next checkpoint, and the
  checkpoint itself).

The stages add up to the record's age when its row became visible. Stamping costs a few microseconds per
record, so the engine runs without it (``stages=None``) except in ``livectx bench features``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from livectx.metrics import percentile

STAGES = ("produce", "fetch", "apply", "commit")
#: confluent-kafka's timestamp type of a broker-stamped record (``TIMESTAMP_LOG_APPEND_TIME``).
LOG_APPEND_TIME = 2


def wall_ms() -> float:
    return time.time_ns() / 1e6


class StageClock:
    """Per-record stage timings of one engine. ``created_ms(message)``: when the record was made (``None``:
    unknown, the record is not sampled). Keeps at most ``limit`` finished samples (the first ones)."""

    def __init__(
        self,
        created_ms: Callable[[Any], float | None],
        *,
        limit: int = 200_000,
        clock: Callable[[], float] = wall_ms,
    ) -> None:
        self._created_ms = created_ms
        self._limit = limit
        self._clock = clock
        self._consumed: list[tuple[float, float, float]] = []  # (created, appended, consumed)
        self._applied: list[tuple[float, float, float, float]] = []  # ... + applied
        self.samples: list[tuple[float, float, float, float]] = []  # per record: the four stages, ms
        self.unstamped = 0  # records without an append time (the topic stamps CreateTime)

    def consumed(self, messages: list[Any]) -> None:
        """``consume`` returned ``messages`` (records and events such as partition ends)."""
        if not messages or len(self.samples) >= self._limit:
            return
        now = self._clock()
        for message in messages:
            if message.error() is not None:
                continue
            kind, appended = message.timestamp()
            created = self._created_ms(message)
            if created is None:
                continue
            if kind != LOG_APPEND_TIME:
                self.unstamped += 1
                continue
            self._consumed.append((created, float(appended), now))

    def applied(self) -> None:
        """Every record consumed so far is in window state."""
        if self._consumed:
            now = self._clock()
            self._applied += [(*stamps, now) for stamps in self._consumed]
            self._consumed = []

    def committed(self) -> None:
        """A checkpoint committed: every applied record's row is visible."""
        if not self._applied:
            return
        now = self._clock()
        room = self._limit - len(self.samples)
        for created, appended, consumed, applied in self._applied[: max(0, room)]:
            self.samples.append((appended - created, consumed - appended, applied - consumed, now - applied))
        self._applied = []

    def dropped(self) -> None:
        """The work since the last commit was dropped (fenced): it is re-consumed, and sampled again."""
        self._consumed, self._applied = [], []

    def summary(self, skip: int = 0) -> dict[str, float]:
        """p50 and p99 of each stage and of their sum (``<stage>_p50_ms``, ..., ``total_p99_ms``), over the
        samples after the first ``skip`` (a warm-up)."""
        samples = self.samples[skip:]
        figures: dict[str, float] = {"samples": float(len(samples))}
        if not samples:
            return figures
        columns = [*zip(*samples, strict=True), [sum(s) for s in samples]]
        for name, values in zip((*STAGES, "total"), columns, strict=True):
            figures[f"{name}_p50_ms"] = round(percentile(list(values), 50), 1)
            figures[f"{name}_p99_ms"] = round(percentile(list(values), 99), 1)
        return figures
