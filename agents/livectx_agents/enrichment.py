"""Async enrichment for stream processing: each event gets a lookup (a vector search), many in flight.

A synchronous lookup per event makes the stream as slow as the slowest lookup. This operator keeps up to
``max_in_flight`` lookups running concurrently, bounds each by ``timeout_s``, and emits:
- the enriched event to ``output_topic``, in input order per partition (``ordered=True``) or as soon as
  it is ready (``ordered=False``);
- on timeout or error, the original event to ``fallback_topic`` with the reason in a header (e.g. a
  default queue), so a slow vector store costs fallbacks and bounded lag, never a stalled pipeline.

Offsets are committed only up to the first event of each partition whose output the broker has not yet
acknowledged (delivery callbacks, no blocking flush), so a crash re-reads rather than loses; delivery
failure stops the operator. At-least-once: outputs carry the ``livectx.source`` header to deduplicate by.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx.consuming import CaughtUp, PartitionId, is_record
from livectx.errors import LivectxError
from livectx.kafka import consumer, producer, require_reachable
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer, TopicPartition

log = logging.getLogger(__name__)

SOURCE_HEADER = "livectx.source"
FALLBACK_REASON = "livectx.fallback.reason"
Lookup = Callable[["Message"], Awaitable[dict[str, Any]]]


@dataclass
class EnrichmentStats:
    consumed: int = 0
    enriched: int = 0
    fallbacks: int = 0
    max_in_flight_seen: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pending:
    message: Message
    task: asyncio.Task[dict[str, Any]]
    emitted: bool = False  # its output was produced
    acked: bool = False  # ... and acknowledged by the broker: only then may its offset be committed


@dataclass(frozen=True)
class Limits:
    """How much may be in flight, how long one lookup may take, and whether outputs keep input order."""

    max_in_flight: int = 64
    timeout_s: float = 0.1
    ordered: bool = True


class Ledger:
    """Per partition, the events not yet safe to commit past, in input order: an event's offset may be
    committed only once its output (or fallback) was acknowledged by the broker, and so every one before it."""

    def __init__(self) -> None:
        self.pending: dict[PartitionId, deque[_Pending]] = {}
        self._consumed_upto: dict[PartitionId, int] = {}
        self._committed: dict[PartitionId, int] = {}

    def add(self, pending: _Pending) -> None:
        message = pending.message
        position = (message.topic(), message.partition())
        self.pending.setdefault(position, deque()).append(pending)
        self._consumed_upto[position] = message.offset()

    def idle(self) -> bool:
        return not any(self.pending.values())

    def release_acknowledged(self, queue: deque[_Pending]) -> None:
        while queue and queue[0].acked:  # the queue holds what is not yet safe to commit past
            queue.popleft()

    def to_commit(self) -> list[TopicPartition]:
        """Per partition, up to the first event whose output is not yet acknowledged (if that moved)."""
        from confluent_kafka import TopicPartition

        offsets = []
        for (topic, partition), queue in self.pending.items():
            upto = queue[0].message.offset() if queue else self._consumed_upto[(topic, partition)] + 1
            if self._committed.get((topic, partition)) != upto:
                offsets.append(TopicPartition(topic, partition, upto))
        return offsets

    def committed(self, offsets: list[TopicPartition]) -> None:
        self._committed.update({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def cancel_all(self) -> None:
        for queue in self.pending.values():
            for pending in queue:
                pending.task.cancel()


class Emitter:
    """Produces an event's outcome: the enriched event to ``output_topic``, or the original to
    ``fallback_topic`` with the reason. Acknowledgements mark the event committable; a delivery failure is
    kept and ends the operator at its next step (no output may be lost silently)."""

    def __init__(self, p: Producer, output_topic: str, fallback_topic: str, stats: EnrichmentStats) -> None:
        self.producer = p
        self.output_topic = output_topic
        self.fallback_topic = fallback_topic
        self._stats = stats
        self._delivery_error: str | None = None

    def raise_delivery_error(self) -> None:
        if self._delivery_error is not None:
            raise LivectxError(f"enrichment output not delivered: {self._delivery_error}")

    def emit(self, pending: _Pending) -> None:
        message = pending.message
        source = f"{message.topic()}-{message.partition()}-{message.offset()}"
        headers = [*(message.headers() or []), (SOURCE_HEADER, source.encode())]
        try:
            enrichment = pending.task.result()
        except Exception as exc:  # timeout or lookup failure: the fallback route, with the reason
            reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            self.producer.produce(
                self.fallback_topic,
                key=message.key(),
                value=message.value(),
                headers=[*headers, (FALLBACK_REASON, reason.encode())],
                on_delivery=self._acknowledge(pending),
            )
            self._stats.fallbacks += 1
            self._stats.reasons[reason] = self._stats.reasons.get(reason, 0) + 1
        else:
            value = json.loads(message.value() or b"{}")
            value["enrichment"] = enrichment
            self.producer.produce(
                self.output_topic,
                key=message.key(),
                value=json.dumps(value).encode(),
                headers=headers,
                on_delivery=self._acknowledge(pending),
            )
            self._stats.enriched += 1
        pending.emitted = True

    def _acknowledge(self, pending: _Pending) -> Callable[[Any, Any], None]:
        def delivered(err: Any, _msg: Any) -> None:
            if err is None:
                pending.acked = True
            else:
                self._delivery_error = str(err)

        return delivered


class AsyncEnricher:
    """Consumes ``source_topic``, looks each event up concurrently (``lookup``) within :class:`Limits`,
    and emits outcomes through an :class:`Emitter`, committing what the :class:`Ledger` says is safe."""

    def __init__(
        self,
        settings: Settings,
        lookup: Lookup,
        *,
        source_topic: str,
        output_topic: str,
        fallback_topic: str,
        consumer_group: str,
        max_in_flight: int = 64,
        timeout_s: float = 0.1,
        ordered: bool = True,
    ) -> None:
        self.settings = settings
        self.lookup = lookup
        self.source_topic = source_topic
        self.group = consumer_group
        self.limits = Limits(max_in_flight, timeout_s, ordered)
        self.stats = EnrichmentStats()
        self._consumer = consumer(settings, consumer_group)
        self._emitter = Emitter(producer(settings), output_topic, fallback_topic, self.stats)
        self._ledger = Ledger()
        self._in_flight = 0
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self, *, until_caught_up: bool = False) -> EnrichmentStats:
        require_reachable(self.settings)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, [self.source_topic])
        self._consumer.subscribe([self.source_topic])
        next_commit = 0.0
        try:
            while not self._stopping:
                room = self.limits.max_in_flight - self._in_flight
                if room > 0:
                    for message in self._consumer.consume(room, 0):
                        self._start(message)
                await asyncio.sleep(0.005 if room > 0 else 0.001)  # yield to the lookups
                self._emit_ready()
                self._emitter.producer.poll(0)
                if time.monotonic() >= next_commit:
                    next_commit = time.monotonic() + 0.2
                    self._commit()
                    idle = self._in_flight == 0 and self._ledger.idle()
                    if caught_up is not None and idle and caught_up.reached_now():
                        break
        finally:
            self._ledger.cancel_all()
            self._emitter.producer.flush(30)
            self._consumer.close()
            CaughtUp.close_if_any(caught_up)
        return self.stats

    def _start(self, message: Message) -> None:
        if not is_record(message, log):
            return
        self.stats.consumed += 1
        task = asyncio.ensure_future(asyncio.wait_for(self.lookup(message), self.limits.timeout_s))
        self._ledger.add(_Pending(message, task))
        self._in_flight += 1
        self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, self._in_flight)

    def _emit_ready(self) -> None:
        self._emitter.raise_delivery_error()
        for queue in self._ledger.pending.values():
            for pending in queue:
                if pending.emitted:
                    continue
                if not pending.task.done():
                    if self.limits.ordered:
                        break  # later events wait for this one: output keeps the input order
                    continue
                self._emitter.emit(pending)
                self._in_flight -= 1
            self._ledger.release_acknowledged(queue)

    def _commit(self) -> None:
        """Commit, per partition, up to the first event whose output is not yet acknowledged."""
        from confluent_kafka import KafkaException

        offsets = self._ledger.to_commit()
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance took the partition: the new owner re-reads
            log.warning("offset commit failed (events will be re-read): %s", exc)
            return
        self._ledger.committed(offsets)
