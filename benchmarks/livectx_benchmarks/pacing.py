"""Pacing a feeder to a sustained rate.

The feeders of ``bench features``, ``bench quota`` and ``bench soak`` send at a steady rate, not in bursts:
an event's age (what freshness measures) must be the pipeline's delay, not a queue of events the feeder
sent ahead of their time. Every slot is counted from the feeder's start, so a slow send is caught up on
instead of shifting every later event.

The feeder sleeps only once it is :data:`MIN_SLEEP_S` ahead of its slots, so at 5,000 events/s it sends
about five at a time, each stamped when it is sent. Sleeping before every event (a 0.2 ms sleep, 5,000 times
a second) cost the feeder 0.43 of a core, measured, against 0.22 this way: CPU the broker, Redis and the
engine under test share on a 2-core machine. A real producer runs elsewhere.
"""

from __future__ import annotations

import time
from typing import Any

#: How far ahead of its slots a feeder gets before it sleeps (see the module docstring).
MIN_SLEEP_S = 0.001


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
        if ahead >= MIN_SLEEP_S:
            time.sleep(ahead)  # pacing the sustained rate
        if n % self.poll_every == 0:
            self.p.poll(0)
            if self.sent is not None:
                self.sent.value = n
