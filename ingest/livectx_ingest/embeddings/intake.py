"""The consumer thread's reading: poll as much as the open batch has room for, classify each record
(upsert / delete / dead letter) and add it to the batch.

A record whose writer schema must be asked of a registry that does not answer is neither dead-lettered nor
taken: its partition is sought back to it and read again after a wait (:class:`~livectx.wire.RegistryPause`),
so an outage of the registry delays records and loses none.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from livectx import tracing
from livectx.consuming import PartitionId, is_record
from livectx.errors import RegistryUnavailable, SchemaError
from livectx.vectors.sources import Delete, TextSource, Upsert, to_change
from livectx.wire import RegistryPause
from livectx_ingest.embeddings.backpressure import Backpressure
from livectx_ingest.embeddings.batches import Consumed, EmbeddingStats
from livectx_ingest.embeddings.open_batch import OpenBatch
from livectx_ingest.embeddings.ports import DeadLetters, RecordSource

if TYPE_CHECKING:
    from confluent_kafka import Message

# The worker's lines keep the worker's logger name however it is split (operators filter on it).
log = logging.getLogger("livectx_ingest.embeddings.worker")


class Intake:
    """Reads records into the open batch, under :class:`Backpressure`. Runs on the consumer thread only."""

    def __init__(
        self,
        consumer: RecordSource,
        sources: dict[str, TextSource],
        batch: OpenBatch,
        dead_letters: DeadLetters,
        stats: EmbeddingStats,
        *,
        max_chars: int,
        schemas: Any,
        registry_pause: RegistryPause,
        stopping: threading.Event,
    ) -> None:
        self._consumer = consumer
        self._sources = sources
        self._batch = batch
        self._dead_letters = dead_letters
        self._stats = stats
        self._max_chars = max_chars
        self._schemas = schemas
        self._registry_pause = registry_pause
        self._stopping = stopping  # a registry pause waits on it, so a stop does not wait the pause out
        self.backpressure = Backpressure(consumer, on_pause=self._count_pause)

    def step(self, room: int) -> None:
        """One round of the consumer loop, given the open batch's room (pausing while it stays full)."""
        plan = self.backpressure.admit(room)
        if plan is not None:
            self.poll(*plan)

    def poll(self, room: int, timeout_s: float) -> None:
        """Wait for the first record, then take what is already fetched (up to ``room``): records reach the
        open batch as they arrive instead of after a fixed consume timeout."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return
        messages = [first, *(self._consumer.consume(room - 1, 0) if room > 1 else ())]
        held: dict[PartitionId, int] = {}
        reason = ""
        for message in messages:
            tp = (message.topic(), message.partition())
            if tp in held:  # nothing after a held record is taken
                continue
            try:
                self._accept(message)
            except RegistryUnavailable as exc:
                held[tp] = message.offset()
                reason = str(exc)
        if not held:
            self._registry_pause.resumed()
            return
        from confluent_kafka import TopicPartition

        for (topic, partition), offset in held.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        where = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(held.items()))
        self._stopping.wait(self._registry_pause.wait_s(reason, where))

    def _accept(self, message: Message) -> None:
        if not is_record(message, log):
            return
        source = self._sources[message.topic()]
        try:
            change: Upsert | Delete | None = to_change(
                source, message.key(), message.value(), self._max_chars, self._schemas
            )  # RegistryUnavailable: not taken (nor counted); the caller reads it again
        except SchemaError as exc:
            log.warning("dead-lettering %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            self._dead_letters.publish(message, str(exc))
            self._stats.dead_lettered += 1
            change = None
        self._stats.consumed += 1
        if self._stats.first_record is None:
            self._stats.first_record = time.monotonic()
        _kind, timestamp_ms = message.timestamp()
        consumed = Consumed(
            message.topic(), message.partition(), message.offset(), timestamp_ms, change, tracing.context_of(message)
        )
        self._batch.add(consumed)

    def _count_pause(self) -> None:
        self._stats.pauses += 1
