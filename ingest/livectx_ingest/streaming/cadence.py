"""When the feature engine's next checkpoint starts: the freshness/throughput trade-off, as pure logic.

While the worker keeps up (a consume call returns less than a full batch), a checkpoint starts every
``interval_s``, counted start to start, and the consume wait never runs past the next one: an event is
online within about that long plus a checkpoint. While it works through a backlog (full batches), one
starts every ``BACKLOG_FACTOR`` intervals and takes at most ``1 / BACKLOG_SHARE`` of the time since the
previous one started, so throughput goes to events rather than to rewriting the same rows. The next
checkpoint's cost is estimated from the rows it would write and the cost per row the last one measured
(``ROW_COST_S`` before any), so the bound holds once one checkpoint was measured.

Times are passed in (``time.monotonic()`` in the engine), so the policy is unit-tested without a clock.
"""

from __future__ import annotations

#: Seconds between checkpoint starts while keeping up: the freshness knob (``--commit-interval``).
COMMIT_INTERVAL_S = 0.01
#: Events per consume call: bounds the work between two checkpoint checks (``--max-batch``).
MAX_BATCH = 5_000
BACKLOG_FACTOR = 10  # under a backlog, checkpoint at most every 10 intervals ...
BACKLOG_SHARE = 20  # ... and spend at most 1/this of the time checkpointing
#: Under a backlog, a checkpoint starts once this many rows are waiting, whatever the time: a catch-up over
#: many entities otherwise holds every entity's row, state dump and command in one checkpoint (measured by
#: ``bench scaling``: ~7 KB of worker memory per entity and view at its peak, 8 GB at 1M entities).
MAX_CHECKPOINT_ROWS = 20_000
#: What a checkpoint costs per row it writes, until one was measured (about 15-20 us here: the row's values,
#: its Feast encoding and its state dump).
ROW_COST_S = 20e-6


class CheckpointCadence:
    """The engine's checkpoint timing: :meth:`observe` each consume, :meth:`due` says when to checkpoint,
    :meth:`started` / :meth:`finished` around it."""

    def __init__(
        self,
        interval_s: float,
        now: float,
        *,
        backlog_factor: int = BACKLOG_FACTOR,
        backlog_share: int = BACKLOG_SHARE,
        row_cost_s: float = ROW_COST_S,
        max_rows: int = MAX_CHECKPOINT_ROWS,
    ) -> None:
        self.interval_s = interval_s
        self.backlog_factor = backlog_factor
        self.backlog_share = backlog_share
        self.row_cost_s = row_cost_s
        self.max_rows = max_rows
        self.last_s = now  # when the last checkpoint started
        self.wait_s = interval_s  # start to start, until the next one is due

    def poll_timeout(self, now: float, poll_s: float) -> float:
        """How long a consume call may wait: ``poll_s`` at most, and never past the next checkpoint."""
        return min(poll_s, max(0.0, self.last_s + self.wait_s - now))

    def observe(self, backlog: bool, dirty_rows: int) -> None:
        """After a consume: ``backlog`` when it returned a full batch (or more is waiting on the broker);
        ``dirty_rows``, the rows the next checkpoint would write (only read under a backlog)."""
        if backlog:
            self.wait_s = max(self.backlog_factor * self.interval_s, self._cost(dirty_rows))
        else:
            self.wait_s = self.interval_s

    def grow(self, dirty_rows: int) -> None:
        """Under a backlog, rows just applied count in the next checkpoint's cost too."""
        self.wait_s = max(self.wait_s, self._cost(dirty_rows))

    def due(self, now: float) -> bool:
        return now - self.last_s >= self.wait_s

    def full(self, dirty_rows: int) -> bool:
        """Whether ``dirty_rows`` waiting make a checkpoint due now (bounds its memory, not its time)."""
        return dirty_rows >= self.max_rows

    def started(self, now: float) -> None:
        self.last_s = now

    def finished(self, now: float, rows: int) -> None:
        """A checkpoint that started at :meth:`started` wrote ``rows`` and ended ``now``: the cost per row."""
        if rows:
            self.row_cost_s = (now - self.last_s) / rows

    def _cost(self, rows: int) -> float:
        """The wait that keeps a checkpoint of ``rows`` within its share of the time."""
        return self.backlog_share * self.row_cost_s * rows
