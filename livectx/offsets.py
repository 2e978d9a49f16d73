"""Consumer-group offsets: end offsets, committed positions, lag, and waiting for a group to catch up.

"Caught up" always means the group's *committed* offsets reached a target (what a restart resumes from),
so it implies the side effects are durable, not merely computed. Shared by every worker, the benchmarks
and the tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer

#: A partition of a topic, as every worker keys its positions.
PartitionId = tuple[str, int]

log = logging.getLogger(__name__)


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """The log end of every partition of ``topics`` now, read by a probe consumer of its own."""
    from livectx.consuming import probe_consumer

    probe = probe_consumer(settings)
    try:
        return watermark_ends(probe, topics)
    finally:
        probe.close()


def watermark_ends(probe: Consumer, topics: list[str]) -> dict[tuple[str, int], int]:
    """The high watermark of every partition of ``topics``, asked of the broker (not the cached value)."""
    from confluent_kafka import TopicPartition

    metadata = probe.list_topics(timeout=10)
    targets = {}
    for topic in topics:
        for partition in metadata.topics[topic].partitions:
            _low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
            targets[(topic, partition)] = high
    return targets


class GroupCommits:
    """One consumer group's committed offsets, read from outside the group.

    Read through a consumer that carries the group's id and never subscribes (so it never joins, and the
    group's members are not disturbed), not through ``AdminClient.list_consumer_group_offsets``: when an
    OffsetFetch answer says the group's coordinator moved (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE),
    librdkafka (2.16 and before) asks the client's consumer-group handle to find it again, and an admin
    client has none (``rd_kafka_handle_OffsetFetch`` calls ``rd_kafka_cgrp_op`` with ``rk_cgrp == NULL``,
    confluentinc/librdkafka#5040): the whole process dies of SIGSEGV. A coordinator moves whenever a broker
    dies or comes back, so a lag or caught-up probe would take a worker down in the very failover it should
    ride out. A consumer's own group handle looks the coordinator up again and retries.

    ``read_uncommitted``: offsets a transaction has sent but not committed are not waited for; like the
    admin read, only committed offsets are answered. ``consumer`` is injectable (tests)."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer

    @classmethod
    def open(cls, settings: Settings, group: str) -> GroupCommits:
        from confluent_kafka import Consumer

        config = {"group.id": group, "enable.auto.commit": False, "isolation.level": "read_uncommitted"}
        return cls(Consumer(settings.kafka_config(**config)))

    def read(self, partitions: Iterable[PartitionId], timeout_s: float = 10) -> dict[PartitionId, int]:
        """What the group committed on ``partitions``; partitions it never committed are left out."""
        from confluent_kafka import TopicPartition

        asked = [TopicPartition(t, p) for t, p in partitions]
        if not asked:
            return {}
        answered = self._consumer.committed(asked, timeout=timeout_s)
        return {(tp.topic, tp.partition): tp.offset for tp in answered if tp.offset >= 0}

    def read_topics(self, topics: Iterable[str] | None = None, timeout_s: float = 10) -> dict[PartitionId, int]:
        """:meth:`read` over every partition of ``topics`` (``None``: every topic but the broker's own)."""
        metadata = self._consumer.list_topics(timeout=timeout_s).topics
        if topics is None:
            names = [t for t in metadata if not t.startswith("__")]
        else:
            names = [t for t in topics if t in metadata]
        return self.read(((t, p) for t in names for p in metadata[t].partitions), timeout_s)

    def reached(self, targets: dict[PartitionId, int]) -> bool:
        """Whether the group committed every target (an empty partition, target 0, needs nothing). A read
        that fails (a broker away for a moment) answers ``False``: the caller asks again."""
        try:
            committed = self.read(targets)
        except Exception as exc:  # shows in debug logs; the next probe asks again
            log.debug("committed offsets not readable yet: %s", exc)
            return False
        return all(target == 0 or committed.get(tp, -1) >= target for tp, target in targets.items())

    def ends(self, topics: list[str]) -> dict[PartitionId, int]:
        """The log ends of ``topics``, read by the same consumer (no second client)."""
        return watermark_ends(self._consumer, topics)

    def close(self) -> None:
        """Close the consumer; it never joined, so the group sees nothing. Call it on the thread that read."""
        self._consumer.close()


def wait_for_caught_up(settings: Settings, group: str, targets: dict[PartitionId, int], timeout_s: float) -> bool:
    """For callers outside the worker (tests, the bench): block until the group committed ``targets``."""
    commits = GroupCommits.open(settings, group)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if commits.reached(targets):
                return True
            time.sleep(0.05)  # polling a condition with a deadline
        return False
    finally:
        commits.close()


def group_lag(settings: Settings, group: str, topics: list[str] | None = None) -> list[tuple[str, int, int, int]]:
    """``(topic, partition, committed, end)`` for every partition ``group`` has committed (of ``topics``, or
    of every topic), sorted. One call with a client of its own; a caller that asks repeatedly keeps a
    :class:`livectx.consuming.GroupLag`."""
    from livectx.consuming import GroupLag

    lag = GroupLag(settings, topics=topics)
    try:
        return lag.rows(group)
    finally:
        lag.close()
