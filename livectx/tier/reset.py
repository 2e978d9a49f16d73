"""Kafka-native time travel for a consumer group (what ``kafka-consumer-groups.sh --reset-offsets
--to-datetime`` does): move a group's committed offsets to the first record at or after a time.

A shadow consumer reset this way re-reads the hot tier from that point. When the time is older than
what the broker still holds, the plan says so: those records are only in the cold tier
(``livectx replay range``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from livectx.errors import LivectxError
from livectx.kafka import admin_client
from livectx.offsets import GroupCommits
from livectx.settings import Settings
from livectx.tier.hot import probe_consumer


@dataclass(frozen=True)
class OffsetMove:
    topic: str
    partition: int
    current: int | None  # committed offset now (None: never committed)
    target: int
    low: int
    high: int

    @property
    def before_hot(self) -> bool:
        """The broker's earliest record is after the requested time: older records are only archived."""
        return self.target == self.low and self.low > 0


def plan_reset(settings: Settings, group: str, topic: str, to: datetime) -> list[OffsetMove]:
    """Per partition, the group's offset now and the first offset whose timestamp is >= ``to`` (the end
    offset when no record is that recent)."""
    from confluent_kafka import TopicPartition

    if to.tzinfo is None:
        raise LivectxError(f"--to-datetime {to.isoformat()} has no time zone: add one (e.g. 2024-05-01T00:00:00Z)")
    probe = probe_consumer(settings)
    try:
        metadata = probe.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise LivectxError(f"topic {topic!r} does not exist on the broker")
        partitions = sorted(metadata.partitions)
        at_ms = int(to.timestamp() * 1000)
        found = probe.offsets_for_times([TopicPartition(topic, p, at_ms) for p in partitions], timeout=10)
        marks = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False) for p in partitions}
    finally:
        probe.close()
    commits = GroupCommits.open(settings, group)
    try:
        committed = {p: offset for (_t, p), offset in commits.read((topic, p) for p in partitions).items()}
    finally:
        commits.close()
    moves = []
    for tp in found:
        low, high = marks[tp.partition]
        target = tp.offset if tp.offset >= 0 else high  # no record at or after the time: the end
        moves.append(OffsetMove(topic, tp.partition, committed.get(tp.partition), target, low, high))
    return moves


def execute_reset(settings: Settings, group: str, moves: list[OffsetMove]) -> None:
    """Commit the planned offsets for ``group``; refuses while the group has active members (their own
    commits would overwrite the reset, as kafka-consumer-groups.sh refuses too)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    admin = admin_client(settings)
    description = admin.describe_consumer_groups([group])[group].result(10)
    if description.members:
        raise LivectxError(
            f"consumer group {group!r} has {len(description.members)} active member(s) "
            f"(state {description.state.name}): stop its consumers, then reset"
        )
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(m.topic, m.partition, m.target) for m in moves])
    result = admin.alter_consumer_group_offsets([request])[group].result(10)
    failed = [tp for tp in result.topic_partitions if tp.error is not None]
    if failed:
        first = failed[0]
        raise LivectxError(f"resetting {group!r} failed for {first.topic}[{first.partition}]: {first.error}")
