"""Consumer-group offsets: end offsets, committed positions, lag, and waiting for a group to catch up.

"Caught up" always means the group's *committed* offsets reached a target (what a restart resumes from),
so it implies the side effects are durable, not merely computed. Shared by every worker, the benchmarks
and the tests.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from livectx.kafka import admin_client
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

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


def committed_reached(admin: object, group: str, targets: dict[tuple[str, int], int]) -> bool:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for (t, p) in targets])
    try:
        result = admin.list_consumer_group_offsets([request])[group].result(10)  # type: ignore[attr-defined]
    except Exception as exc:  # the group may not exist yet; any other failure shows in debug logs
        log.debug("committed offsets of %s not readable yet: %s", group, exc)
        return False
    committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
    return all(target == 0 or committed.get(tp, -1) >= target for tp, target in targets.items())


def wait_for_caught_up(settings: Settings, group: str, targets: dict[tuple[str, int], int], timeout_s: float) -> bool:
    """For callers outside the worker (tests, the bench): block until the group committed ``targets``."""
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if committed_reached(admin, group, targets):
            return True
        time.sleep(0.05)  # polling a condition with a deadline
    return False


def group_lag(settings: Settings, group: str) -> list[tuple[str, int, int, int]]:
    """``(topic, partition, committed, end)`` for every partition ``group`` has committed, sorted. One call
    with clients of its own; a caller that asks repeatedly keeps a :class:`livectx.consuming.GroupLag`."""
    from livectx.consuming import GroupLag

    lag = GroupLag(settings)
    try:
        return lag.rows(group)
    finally:
        lag.close()


def committed_offsets(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    """What ``group`` has committed, per partition (partitions it never committed are left out)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}
