"""Consume -> handle -> produce, exactly once through Kafka transactions: the agents' loop and the
feature engine's repartitioner.

Each batch of records is handled inside one transaction: decision events (and dead letters) are produced
and the input offsets committed atomically (``send_offsets_to_transaction``). A crash aborts the open
transaction; the records are redelivered and decided again, and no decision of theirs was ever visible
to ``read_committed`` readers. Side effects outside Kafka are made idempotent by the handler (see
:mod:`livectx_agents.idempotency`).

A handler that cannot decode a framed record because the schema registry does not answer raises
:class:`~livectx.errors.RegistryUnavailable`: the batch's transaction is aborted and its partitions are
rewound as after a crash, and the loop retries it after a growing, bounded wait
(:class:`~livectx.wire.RegistryPause`) instead of dead-lettering good records or dying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livectx import tracing
from livectx.consuming import CaughtUp, is_record
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import RegistryUnavailable
from livectx.kafka import consumer, producer, require_reachable
from livectx.settings import Settings
from livectx.wire import RegistryPause

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer

log = logging.getLogger(__name__)

Handler = Callable[["Message", "Producer"], None]
#: Called with a consumed batch inside its transaction, before ``handle`` sees each record: a handler that
#: decides better in bulk (one feature read, one model call) does the work here and publishes per record.
Prepare = Callable[[Sequence["Message"]], None]


@dataclass
class LoopStats:
    consumed: int = 0
    transactions: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Steps:
    """What the loop runs on a batch, inside its transaction: ``prepare`` on the whole batch (if given),
    then ``handle`` on each record."""

    handle: Handler
    prepare: Prepare | None = None


@dataclass(frozen=True)
class Batching:
    """How a batch is taken: up to ``size`` records, waiting at most ``fill_wait_s`` for it to fill; 0: take
    what is queued once a record is there (a latency-bound handler: small batches while keeping up, full
    ones under a backlog)."""

    size: int = 100
    fill_wait_s: float = 0.1

    def take(self, consumer: Consumer) -> list[Message]:
        if self.fill_wait_s > 0:
            return consumer.consume(self.size, self.fill_wait_s)
        first = consumer.consume(1, 0.1)
        return first + consumer.consume(self.size - 1, 0) if first else first


class TransactionalLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        topics: Sequence[str],
        consumer_group: str,
        worker_id: str,
        handle: Handler,
        dead_letter_topic: str | None = None,
        batch_size: int = 100,
        prepare: Prepare | None = None,
        fill_wait_s: float = 0.1,
    ) -> None:
        self.settings = settings
        self.name = name
        self.topics = list(topics)
        self.group = consumer_group
        self._steps = Steps(handle, prepare)
        self._batching = Batching(batch_size, fill_wait_s)
        self._consumer = consumer(settings, consumer_group, **{"client.id": f"livectx-{name}-{worker_id}"})
        # A stable transactional id per worker: a restarted worker fences its killed predecessor at once.
        self._producer = producer(settings, **{"transactional.id": f"livectx-{name}-{consumer_group}-{worker_id}"})
        self._dead_letters = DeadLetterPublisher(
            self._producer, dead_letter_topic or settings.kafka.dead_letter_topic, name
        )
        self._stopping = False
        self._registry_pause = RegistryPause(log)
        self.stats = LoopStats()

    def stop(self) -> None:
        self._stopping = True

    def run(self, *, until_caught_up: bool = False) -> LoopStats:
        require_reachable(self.settings)
        self._producer.init_transactions(30)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, self.topics)
        self._consumer.subscribe(self.topics)
        try:
            while not self._stopping:
                messages = [m for m in self._next_batch() if is_record(m, log)]
                if messages:
                    counted = self.stats.consumed, self.stats.dead_lettered
                    try:
                        self._transaction(messages)
                    except RegistryUnavailable as exc:  # aborted and rewound: nothing of the batch happened
                        self.stats.consumed, self.stats.dead_lettered = counted
                        first = messages[0]
                        where = f"{first.topic()}[{first.partition()}]@{first.offset()}"
                        self._sleep(self._registry_pause.wait_s(str(exc), where))
                        continue
                    self._registry_pause.resumed()
                if caught_up is not None and caught_up.reached():
                    break
        finally:
            self._consumer.close()
            CaughtUp.close_if_any(caught_up)
        return self.stats

    def _next_batch(self) -> list[Message]:
        return self._batching.take(self._consumer)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # a stop ends the wait early

    def _transaction(self, messages: list[Message]) -> None:
        from confluent_kafka import TopicPartition

        self._producer.begin_transaction()
        try:
            if self._steps.prepare is not None:
                self._steps.prepare(messages)
            positions: dict[tuple[str, int], int] = {}
            for message in messages:
                self.stats.consumed += 1
                positions[(message.topic(), message.partition())] = message.offset() + 1
                try:
                    with tracing.record_span(f"livectx.{self.name} decide", message):
                        self._steps.handle(message, self._producer)  # a decision: a child of the record's trace
                except DeadLetter as exc:
                    self._dead_letters.publish(message, str(exc))  # inside the transaction
                    self.stats.dead_lettered += 1
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            self._producer.send_offsets_to_transaction(offsets, self._consumer.consumer_group_metadata(), 30)
            self._producer.commit_transaction(30)
        except BaseException:
            self._abort_and_rewind(messages)
            raise
        self.stats.transactions += 1

    def _abort_and_rewind(self, messages: list[Message]) -> None:
        from confluent_kafka import TopicPartition

        try:
            self._producer.abort_transaction(30)
        finally:
            first: dict[tuple[str, int], int] = {}
            for m in messages:
                first.setdefault((m.topic(), m.partition()), m.offset())
            for (topic, partition), offset in first.items():
                self._consumer.seek(TopicPartition(topic, partition, offset))


class DeadLetter(Exception):
    """Raised by a handler for a record it cannot decide on (bad input): it goes to the dead-letter topic."""
