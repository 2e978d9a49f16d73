"""The dead-letter topic: bad records are kept with their reason, never dropped, never fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from livectx.prometheus import DEAD_LETTERS, reason_kind

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

REASON = "livectx.dlq.reason"
SOURCE_TOPIC = "livectx.dlq.source.topic"
SOURCE_PARTITION = "livectx.dlq.source.partition"
SOURCE_OFFSET = "livectx.dlq.source.offset"
WORKER = "livectx.dlq.worker"


def source_headers(message: Message) -> list[tuple[str, bytes]]:
    """Where a copied record came from: topic, partition, offset (consumers key copies by these)."""
    return [
        (SOURCE_TOPIC, message.topic().encode()),
        (SOURCE_PARTITION, str(message.partition()).encode()),
        (SOURCE_OFFSET, str(message.offset()).encode()),
    ]


class SideOutput:
    """Copies records (key, value, chosen headers) to a side topic and knows whether the broker took them:
    a worker calls :meth:`flush` before committing the source offsets, so no copy is ever lost."""

    def __init__(self, producer: Producer, topic: str, what: str) -> None:
        self._producer = producer
        self.topic = topic
        self._what = what
        self._errors: list[str] = []

    def _copy(self, message: Message, headers: list[tuple[str, bytes]]) -> None:
        self._producer.produce(
            self.topic, key=message.key(), value=message.value(), headers=headers, on_delivery=self._on_delivery
        )

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every copy is acknowledged: only then may the source offsets be committed."""
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            from livectx.errors import LivectxError

            raise LivectxError(f"{self._what} {self.topic} did not take {remaining} records: {self._errors[:3]}")

    def _on_delivery(self, err: object, _msg: object) -> None:
        if err is not None:
            self._errors.append(str(err))


class DeadLetterPublisher(SideOutput):
    """Copies a record (key, value, original headers) to the dead-letter topic with why and where from."""

    def __init__(self, producer: Producer, topic: str, worker: str) -> None:
        super().__init__(producer, topic, "dead-letter topic")
        self._worker = worker
        self.count = 0

    def publish(self, message: Message, reason: str) -> None:
        headers = [
            *list(message.headers() or []),
            (REASON, reason.encode()),
            *source_headers(message),
            (WORKER, self._worker.encode()),
        ]
        self._copy(message, headers)
        self.count += 1
        DEAD_LETTERS.labels(self._worker, reason_kind(reason)).inc()
