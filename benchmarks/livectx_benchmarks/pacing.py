"""Pacing a feeder to a sustained rate.

The feeders of ``bench features``, ``bench quota`` and ``bench soak`` send at a steady rate, not in bursts:
an event's age (what freshness measures) must be the pipeline's delay, not a queue of events the feeder
sent ahead of their time. Every slot is counted from the feeder's start, so a slow send is caught up on
instead of shifting every later event.
"""

from __future__ import annotations

import time
from typing import Any


class Pacer:
    """One feeder's clock, started when it is made: the producer ``p`` is polled every ``poll_every`` sends
    (its delivery callbacks served, its queue kept short) and, where the bench watches the feeder, the
    count is published on ``sent`` (a shared ``multiprocessing`` value) at the same time."""

    def __init__(self, p: Any, rate: float, poll_every: int, sent: Any = None) -> None:
        self.p, self.rate, self.poll_every, self.sent = p, rate, poll_every, sent
        self.began = time.perf_counter()

    def sent_one(self, n: int) -> None:
        """After the ``n``-th send: wait for the next one's slot, then poll and count every ``poll_every``."""
        ahead = self.began + n / self.rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)  # pacing the sustained rate
        if n % self.poll_every == 0:
            self.p.poll(0)
            if self.sent is not None:
                self.sent.value = n
