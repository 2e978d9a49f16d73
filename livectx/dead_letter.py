"""The dead-letter topic: bad records are kept with their reason, never dropped, never fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

REASON = "livectx.dlq.reason"
SOURCE_TOPIC = "livectx.dlq.source.topic"
SOURCE_PARTITION = "livectx.dlq.source.partition"
SOURCE_OFFSET = "livectx.dlq.source.offset"
WORKER = "livectx.dlq.worker"


class DeadLetterPublisher:
    """Copies a record (key, value, original headers) to the dead-letter topic with why and where from."""

    def __init__(self, producer: Producer, topic: str, worker: str) -> None:
        self._producer = producer
        self.topic = topic
        self._worker = worker
        self.count = 0
        self._errors: list[str] = []

    def publish(self, message: Message, reason: str) -> None:
        headers = [
            *list(message.headers() or []),
            (REASON, reason.encode()),
            (SOURCE_TOPIC, message.topic().encode()),
            (SOURCE_PARTITION, str(message.partition()).encode()),
            (SOURCE_OFFSET, str(message.offset()).encode()),
            (WORKER, self._worker.encode()),
        ]
        self._producer.produce(
            self.topic, key=message.key(), value=message.value(), headers=headers, on_delivery=self._on_delivery
        )
        self.count += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every dead letter is acknowledged: only then may the source offsets be committed."""
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            from livectx.errors import LivectxError

            raise LivectxError(f"dead-letter topic {self.topic} did not take {remaining} records: {self._errors[:3]}")

    def _on_delivery(self, err: object, _msg: object) -> None:
        if err is not None:
            self._errors.append(str(err))
