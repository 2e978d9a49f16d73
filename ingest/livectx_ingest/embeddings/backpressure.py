"""Backpressure: when the model or the store falls behind, the consumer pauses its partitions instead of
buffering (Kafka keeps the backlog, memory stays flat), and resumes by itself once there is room."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from livectx_ingest.embeddings.ports import PartitionControl

# The worker's lines keep the worker's logger name however it is split (operators filter on it).
log = logging.getLogger("livectx_ingest.embeddings.worker")

#: How long the open batch may stay full before the partitions are paused. Full while the model works is
#: normal (the embed thread takes the batch when it is done); full for longer means a stage is behind.
STALL_S = 1.0

#: How long to wait for the first record when the open batch has room.
POLL_TIMEOUT_S = 0.05


class Backpressure:
    """Decides, from the open batch's room, how much the consumer thread polls, and pauses or resumes the
    assigned partitions. While paused the consumer thread still polls (nothing comes back from paused
    partitions) so the group keeps seeing the worker alive. ``clock`` is injectable for tests."""

    def __init__(
        self,
        consumer: PartitionControl,
        *,
        on_pause: Callable[[], None] = lambda: None,
        stall_s: float = STALL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._on_pause = on_pause
        self._stall_s = stall_s
        self._clock = clock
        self._stalled_since: float | None = None
        self.paused = False

    def admit(self, room: int) -> tuple[int, float] | None:
        """``(max records, poll timeout)`` to poll now, or ``None`` to not poll this round."""
        if room:
            self._stalled_since = None
            self._set_paused(False)
            return room, POLL_TIMEOUT_S
        now = self._clock()
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since > self._stall_s:
            self._set_paused(True)
            return 1, 0.0
        return None

    def revoked(self) -> None:
        """The assignment changed: the partitions paused are gone and new ones start unpaused."""
        self.paused = False

    def _set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        assignment = self._consumer.assignment()
        if paused:
            if assignment:
                self._consumer.pause(assignment)
            self._on_pause()
            log.info("embedder or vector store is behind: pausing consumption (the backlog stays in Kafka)")
        else:
            if assignment:
                self._consumer.resume(assignment)
            log.info("caught up: resuming consumption")
        self.paused = paused
