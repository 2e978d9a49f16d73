"""A consume -> decode -> process -> commit loop shared by the ingest workers.

Guarantees the caller can rely on:
- A record that fails to decode goes to the dead-letter topic with its reason; the loop goes on.
- Offsets are committed (synchronously) only after ``process`` returned and dead letters were
  acknowledged, so a crash re-delivers the batch (at-least-once), never skips it.
- ``run(until_caught_up=True)`` returns once every assigned partition has reached the end offset it had
  when the worker started, which is how the demo and tests wait for ingestion without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livectx import serde
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import LivectxError, SchemaError
from livectx.events import Event

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)

ProcessBatch = Callable[[Sequence[tuple["Message", Event]]], None]


@dataclass
class WorkerStats:
    consumed: int = 0
    processed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    commits: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class BatchWorker:
    """Runs ``process`` over validated events in micro-batches; see the module docstring for guarantees."""

    def __init__(
        self,
        consumer: Consumer,
        topics: Sequence[str],
        event_type: type[Event],
        process: ProcessBatch,
        dead_letters: DeadLetterPublisher,
        *,
        batch_size: int = 1000,
        poll_timeout_s: float = 0.5,
        on_batch: Callable[[WorkerStats], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._topics = list(topics)
        self._event_type = event_type
        self._process = process
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._on_batch = on_batch
        self._targets: dict[tuple[str, int], int] = {}
        self.stats = WorkerStats()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> WorkerStats:
        self._consumer.subscribe(self._topics, on_assign=self._on_assign)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while not self._stopping:
                messages = self._consumer.consume(self._batch_size, self._poll_timeout_s)
                if messages:
                    self._handle(messages)
                if until_caught_up and self._caught_up():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self._consumer.close()
        return self.stats

    def _handle(self, messages: list[Message]) -> None:
        valid: list[tuple[Message, Event]] = []
        positions: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                if message.error().fatal():
                    raise LivectxError(f"Kafka consumer failed: {message.error()}")
                log.warning("consumer error (retriable): %s", message.error())
                continue
            self.stats.consumed += 1
            positions[(message.topic(), message.partition())] = message.offset() + 1
            try:
                event = serde.decode(self._event_type, message.value())
                serde.check_event_time(self._event_type, event.event_time_ms, message.timestamp()[1])
                valid.append((message, event))
            except SchemaError as exc:
                log.warning("dead-lettering %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
                self._dead_letters.publish(message, str(exc))
                self.stats.dead_lettered += 1
        if valid:
            self._process(valid)
            self.stats.processed += len(valid)
        self._dead_letters.flush()
        if positions:
            self._commit(positions)
        self.stats.batches += 1
        if self._on_batch is not None:
            self._on_batch(self.stats)

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import TopicPartition

        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self.stats.commits += 1

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            self._targets.setdefault((tp.topic, tp.partition), high)

    def _caught_up(self) -> bool:
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        behind = []
        for tp in self._consumer.position(assignment):
            target = self._targets.get((tp.topic, tp.partition))
            if target is None:
                return False
            if target > 0 and tp.offset < target:
                behind.append(tp)
        if behind:  # nothing fetched yet on a partition reads as "no position": ask the committed offset
            committed = self._consumer.committed(behind, timeout=10)
            return all(tp.offset >= self._targets[(tp.topic, tp.partition)] for tp in committed)
        return True
