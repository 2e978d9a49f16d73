"""Reading the registry topic from its beginning, and knowing when the read reached the end.

"The end" is the high watermark of every partition, taken when the read starts. Compaction leaves gaps
in the offsets, so the reader asks the consumer to report each partition's end (``enable.partition.eof``)
instead of waiting for a record at ``end - 1`` that may no longer exist. No consumer group is joined and
nothing is committed: every reader replays the whole (compacted, small) topic.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from livectx.kafka import consumer
from livectx.models.errors import ModelRegistryError, RegistryTimeout
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

log = logging.getLogger(__name__)


class TopicReader:
    """A consumer assigned to every partition of ``topic`` from offset 0, reporting partition ends."""

    def __init__(self, settings: Settings, topic: str, *, timeout_s: float = 10.0) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.topic = topic
        self._consumer: Consumer = consumer(
            settings,
            f"livectx-models-reader-{uuid.uuid4().hex[:12]}",  # never joined nor committed: assign() only
            **{"enable.partition.eof": True, "client.id": "livectx-models-reader"},
        )
        try:
            metadata = self._consumer.list_topics(topic, timeout=timeout_s)
        except Exception as exc:
            self._consumer.close()
            raise ModelRegistryError(
                f"Kafka at {settings.kafka_bootstrap} did not answer ({exc}): run `livectx stack up`"
            ) from None
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            self._consumer.close()
            raise ModelRegistryError(f"model registry topic {topic} does not exist: run `livectx topics apply`")
        self.partitions = sorted(described.partitions)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])
        self._positions = {p: 0 for p in self.partitions}

    def end_offsets(self, timeout_s: float) -> dict[int, int]:
        """Each partition's high watermark now: what "caught up" means for a read started now."""
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        electing = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}

        ends = {}
        deadline = time.monotonic() + timeout_s
        for p in self.partitions:
            while True:
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(self.topic, p), max(0.1, deadline - time.monotonic()), cached=False
                    )
                    break
                except KafkaException as exc:
                    # A topic created a moment ago may have no leader known to every broker yet.
                    error = exc.args[0]
                    if not (error.retriable() or error.code() in electing) or time.monotonic() >= deadline:
                        raise ModelRegistryError(f"cannot read the end of {self.topic}[{p}]: {error.str()}") from None
                    time.sleep(0.1)  # retrying a leader election, bounded by the deadline
            ends[p] = high
        return ends

    def poll(self, on_record: Callable[[Message], None], timeout_s: float) -> int:
        """Deliver the records that arrive within ``timeout_s`` (in offset order per partition)."""
        from confluent_kafka import KafkaError

        delivered = 0
        for message in self._consumer.consume(500, timeout_s):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._advance(message.partition(), message.offset())
                    continue
                if error.fatal():
                    raise ModelRegistryError(f"reading the model registry failed: {error}")
                log.warning("model registry consumer error (retriable): %s", error)
                continue
            self._advance(message.partition(), message.offset() + 1)
            on_record(message)
            delivered += 1
        return delivered

    def read_to(self, ends: dict[int, int], on_record: Callable[[Message], None], timeout_s: float) -> None:
        """Deliver every record below ``ends``.

        Raises:
            RegistryTimeout: the end was not reached within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while not self.reached(ends):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                behind = {p: ends[p] - self._positions[p] for p in ends if self._positions[p] < ends[p]}
                raise RegistryTimeout(
                    f"model registry topic {self.topic} not read to its end within {timeout_s:g}s "
                    f"(records behind per partition: {behind}): is Kafka overloaded or unreachable?"
                )
            self.poll(on_record, min(remaining, 0.2))

    def reached(self, ends: dict[int, int]) -> bool:
        return all(self._positions[p] >= end for p, end in ends.items())

    def _advance(self, partition: int, offset: int) -> None:
        if offset > self._positions[partition]:
            self._positions[partition] = offset

    def close(self) -> None:
        self._consumer.close()


def read_all(settings: Settings, topic: str, on_record: Callable[[Message], None], timeout_s: float = 30.0) -> None:
    """Deliver every record of ``topic`` up to the end offsets present now, then close."""
    reader = TopicReader(settings, topic, timeout_s=min(timeout_s, 10.0))
    try:
        reader.read_to(reader.end_offsets(min(timeout_s, 10.0)), on_record, timeout_s)
    finally:
        reader.close()
