"""The hot tier: what the broker still holds (watermarks) and reading a partition's offset range."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from livectx.errors import LivectxError
from livectx.kafka import consumer as make_consumer
from livectx.settings import Settings
from livectx.tier.records import RecordColumns, time_field_of

if TYPE_CHECKING:
    import pyarrow as pa
    from confluent_kafka import Consumer

STALL_S = 30.0


def probe_consumer(settings: Settings) -> Consumer:
    """A consumer that only assigns partitions: it never joins or commits for its throwaway group."""
    return make_consumer(settings, f"livectx-tier-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})


def watermarks(settings: Settings, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """``(topic, partition) -> (low, high)`` on the broker now; topics the broker lacks are absent."""
    from confluent_kafka import TopicPartition

    probe = probe_consumer(settings)
    try:
        metadata = probe.list_topics(timeout=10)
        marks = {}
        for topic in topics:
            if topic not in metadata.topics or metadata.topics[topic].error is not None:
                continue
            for partition in metadata.topics[topic].partitions:
                tp = TopicPartition(topic, partition)
                marks[(topic, partition)] = probe.get_watermark_offsets(tp, timeout=10, cached=False)
        return marks
    finally:
        probe.close()


def read_range(
    settings: Settings, topic: str, partition: int, start: int, stop: int, batch_size: int
) -> Iterator[pa.Table]:
    """Records of ``topic[partition]`` with offsets in ``[start, stop)``, in offset order, as tables of up to
    ``batch_size`` rows (``stop`` at most the high watermark). Raises :class:`LivectxError` when the broker
    stops returning records before ``stop``."""
    from confluent_kafka import KafkaError, TopicPartition

    if stop <= start:
        return
    reader = probe_consumer(settings)
    reader.assign([TopicPartition(topic, partition, start)])
    time_field = time_field_of(topic)
    columns = RecordColumns(time_field)
    position, done = start, False
    last_progress = time.monotonic()
    try:
        while not done:
            for message in reader.consume(min(batch_size, 10_000), 0.5):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise LivectxError(f"reading {topic}[{partition}] from the broker failed: {error}")
                    done = message.offset() >= stop  # the log ends at or past stop (trailing control records)
                elif message.offset() >= stop:
                    done = True
                else:
                    columns.append(message)
                    position = message.offset() + 1
                    last_progress = time.monotonic()
                    done = position >= stop
                    if len(columns) >= batch_size:
                        yield columns.table()
                        columns = RecordColumns(time_field)
                if done:
                    break
            if not done and time.monotonic() - last_progress > STALL_S:
                raise LivectxError(
                    f"the broker returned {topic}[{partition}] only up to offset {position}, expected up to "
                    f"{stop - 1}: is the broker healthy? (`livectx stack status`)"
                )
        if len(columns):
            yield columns.table()
    finally:
        reader.close()
