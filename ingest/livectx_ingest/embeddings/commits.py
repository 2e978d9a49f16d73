"""Committing the offsets of written batches, in the order the batches were taken.

A batch's offsets may be committed only once it and every batch taken before it are in the store: a
commit past a batch still being written would lose that batch on a crash. :class:`CommitLedger` keeps
that order whatever order the writes finish in; :class:`Committer` does the commit itself (dead letters
acknowledged first) and publishes the index's status after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from livectx.consuming import PartitionId, assigned_lag
from livectx_ingest.embeddings.batches import EmbeddingStats, WriteJob
from livectx_ingest.embeddings.ports import DeadLetters, OffsetCommitter, Watermark


def merge_positions(jobs: Iterable[WriteJob]) -> dict[PartitionId, int]:
    """The offsets to commit for several written batches: the furthest position per partition."""
    positions: dict[PartitionId, int] = {}
    for job in jobs:
        for key, offset in job.positions.items():
            positions[key] = max(offset, positions.get(key, 0))
    return positions


class CommitLedger:
    """The batches between "taken by the embed thread" and "committed", numbered in the order taken.

    Thread-safe: the embed thread calls :meth:`begin`, the writer :meth:`finish`, the consumer thread
    :meth:`ready` and :meth:`settle`. :meth:`ready` hands out only the unbroken run of finished batches from
    the oldest uncommitted one, so a batch that finished early waits for the ones before it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_seq = 0  # the number the next batch taken gets
        self._next_ready = 0  # the oldest batch not yet handed out by ready()
        self._settled = 0  # batches committed
        self._finished: dict[int, WriteJob] = {}
        self.committed: dict[PartitionId, int] = {}  # the offsets committed so far, per partition

    @property
    def in_flight(self) -> int:
        """Batches taken and not yet committed: the drain waits for zero."""
        with self._cond:
            return self._next_seq - self._settled

    def begin(self) -> int:
        """A batch was taken: its place in the commit order."""
        with self._cond:
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            return seq

    def finish(self, job: WriteJob) -> None:
        """``job`` is in the store (its ``seq`` from :meth:`begin`)."""
        with self._cond:
            self._finished[job.seq] = job
            self._cond.notify_all()

    def ready(self, wait_s: float = 0.0) -> list[WriteJob]:
        """The finished batches that may be committed now, oldest first; waits up to ``wait_s`` for one."""
        with self._cond:
            if wait_s > 0:
                self._cond.wait_for(lambda: self._next_ready in self._finished, wait_s)
            jobs = []
            while self._next_ready in self._finished:
                jobs.append(self._finished.pop(self._next_ready))
                self._next_ready += 1
            return jobs

    def settle(self, count: int, positions: dict[PartitionId, int]) -> None:
        """``count`` batches from :meth:`ready` were committed, up to ``positions``."""
        with self._cond:
            self._settled += count
            self.committed.update(positions)


class Committer:
    """Commits what the ledger says is ready, then publishes the index's lag and freshness.

    Runs on the consumer thread only (a Kafka consumer is not shared between threads)."""

    def __init__(
        self,
        consumer: OffsetCommitter,
        dead_letters: DeadLetters,
        watermark: Watermark,
        ledger: CommitLedger,
        stats: EmbeddingStats,
        *,
        lag_gauge: Any = None,
        on_progress: Callable[[EmbeddingStats], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._watermark = watermark
        self._ledger = ledger
        self._stats = stats
        self._lag_gauge = lag_gauge
        self._on_progress = on_progress
        self._newest_event_ms: int | None = None

    def commit_ready(self, wait_s: float = 0.0) -> int:
        """Commit every batch the writer finished that may be committed (after its dead letters are
        acknowledged); waits up to ``wait_s`` for one. Returns how many batches were committed."""
        from confluent_kafka import TopicPartition

        jobs = self._ledger.ready(wait_s)
        if not jobs:
            return 0
        positions = merge_positions(jobs)
        self._dead_letters.flush()
        self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()], asynchronous=False)
        self._ledger.settle(len(jobs), positions)
        newest = max((job.newest_event_ms for job in jobs if job.newest_event_ms is not None), default=None)
        self._newest_event_ms = max(newest or 0, self._newest_event_ms or 0) or None
        lag = assigned_lag(self._consumer, self._ledger.committed)  # type: ignore[arg-type]
        self._watermark.publish_status(lag, self._newest_event_ms, int(time.time() * 1000))
        if lag is not None and self._lag_gauge is not None:
            self._lag_gauge.set(lag)
        if self._on_progress is not None:
            self._on_progress(self._stats)
        return len(jobs)
