"""Kafka's copy of the engine's committed offsets, for lag monitoring and ``--until-caught-up``.

Not for resuming: the online store holds the offsets the state belongs to (:mod:`.checkpoint`). So the
copy is written at most every ``interval_s`` (always on a final checkpoint), asynchronously, and a failed
one (e.g. during a rebalance) is simply written again by the next checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from livectx_ingest.streaming.apply import Partition
from livectx_ingest.streaming.checkpoint import PartitionId

log = logging.getLogger(__name__)
MIRROR_INTERVAL_S = 0.1  # for lag and caught-up checks: 10 commits/s is plenty


class OffsetMirror:
    def __init__(self, consumer: Any, interval_s: float = MIRROR_INTERVAL_S) -> None:
        self._consumer = consumer
        self._interval = interval_s
        self._due: dict[PartitionId, Partition] = {}
        self._at = 0.0
        #: Set on assignment: Kafka's copy may lag the store (a crash between the two commits).
        self.pending = False

    def committed(self, partitions: Mapping[PartitionId, Partition]) -> None:
        """``partitions`` were just committed to the store: mirror them soon."""
        self._due.update(partitions)

    def tick(self, final: bool = False, everything: Mapping[PartitionId, Partition] | None = None) -> None:
        """Mirror what is due, if the interval passed (or ``final``); after an assignment, ``everything``."""
        if self.pending and everything is not None:
            self.pending = False
            self.commit(everything)
        now = time.monotonic()
        if self._due and (final or now - self._at >= self._interval):
            self.commit(self._due, wait=final)
            self._due, self._at = {}, now

    def commit(self, done: Mapping[PartitionId, Partition], wait: bool = True) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, part.committed) for (t, p), part in done.items() if part.committed is not None]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as exc:  # e.g. rebalancing: the next checkpoint commits again
            log.info("Kafka offset mirror skipped: %s", exc)
