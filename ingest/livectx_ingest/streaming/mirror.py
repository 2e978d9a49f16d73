"""Kafka's copy of the engine's committed offsets, for lag monitoring and ``--until-caught-up``.

Not for resuming: the online store holds the offsets the state belongs to (:mod:`.checkpoint`). So the
copy is written at most every ``interval_s`` (always on a final checkpoint), asynchronously, and a failed
one is written again: by the next checkpoint, and every ``refresh_s`` for every owned partition. The
refresh matters once a worker has caught up. An asynchronous commit sent while the group coordinator
moves (a broker killed) can fail without librdkafka retrying it (librdkafka#2630, #3398). With no new
record there is no next checkpoint, so Kafka's copy would stay behind for good, and lag and
``--until-caught-up`` with it (seen in ``test_broker_chaos``: the worker had applied and committed
everything to the store, but the group's offsets never reached the end).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from livectx_ingest.streaming.apply import Partition
from livectx_ingest.streaming.checkpoint import PartitionId

log = logging.getLogger(__name__)
MIRROR_INTERVAL_S = 0.1  # for lag and caught-up checks: 10 commits/s is plenty
#: Every owned partition's offset again, changed or not: repairs a commit the coordinator lost.
MIRROR_REFRESH_S = 2.0


class OffsetMirror:
    def __init__(
        self,
        consumer: Any,
        interval_s: float = MIRROR_INTERVAL_S,
        *,
        refresh_s: float = MIRROR_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._interval = interval_s
        self._refresh = refresh_s
        self._clock = clock
        self._due: dict[PartitionId, Partition] = {}
        self._at = 0.0
        self._refreshed_at = clock()
        #: Set on assignment: Kafka's copy may lag the store (a crash between the two commits).
        self.pending = False

    def committed(self, partitions: Mapping[PartitionId, Partition]) -> None:
        """``partitions`` were just committed to the store: mirror them soon."""
        self._due.update(partitions)

    def tick(self, final: bool = False, everything: Mapping[PartitionId, Partition] | None = None) -> None:
        """Mirror what is due, if the interval passed (or ``final``); ``everything`` (the owned partitions)
        after an assignment, and again every ``refresh_s``."""
        now = self._clock()
        if everything is not None:
            if self.pending:
                self.pending = False
                self._refreshed_at = now
                self.commit(everything)
            elif everything and now - self._refreshed_at >= self._refresh:
                self._refreshed_at = now
                self.commit(everything, wait=False)
        if self._due and (final or now - self._at >= self._interval):
            self.commit(self._due, wait=final)
            self._due, self._at = {}, now

    def commit(self, done: Mapping[PartitionId, Partition], wait: bool = True) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, part.committed) for (t, p), part in done.items() if part.committed is not None]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as exc:  # e.g. rebalancing: the next checkpoint commits again
            log.info("Kafka offset mirror skipped: %s", exc)
