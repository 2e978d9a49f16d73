"""Simulated event time for traffic generators (a repo's `@generator` functions)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


class SimulatedClock:
    """Advances event time by exponential inter-arrival gaps at ``events_per_second`` (a Poisson process)."""

    def __init__(self, rng: random.Random, start: datetime, events_per_second: float) -> None:
        self._rng = rng
        self._now = start
        self._mean_gap_s = 1.0 / events_per_second

    def tick(self) -> datetime:
        gap_ms = round(self._rng.expovariate(1.0 / self._mean_gap_s) * 1000)
        self._now += timedelta(milliseconds=gap_ms)
        return self._now

    def at(self, offset_s: float) -> datetime:
        """A time ``offset_s`` after now, millisecond-rounded, for events scheduled ahead (attack bursts)."""
        return self._now + timedelta(milliseconds=round(offset_s * 1000))
