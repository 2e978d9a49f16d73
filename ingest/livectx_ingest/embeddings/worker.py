"""``livectx ingest run embeddings``: text events -> embeddings -> vector store, read-your-writes.

Two stages, so the model and the vector store work at the same time:

    consumer thread: poll -> classify (upsert / delete / dead letter) -> micro-batch -> embed
    writer thread:   upsert + delete in the store (retried with back-off) -> advance the watermark
    consumer thread: commit the offsets of written batches

Guarantees:
- Offsets are committed only after the batch's vectors are in the store and its dead letters are
  acknowledged; vector ids come from the source key, so a crash and replay never adds a vector twice.
- Backpressure: at most ``max_pending`` embedded batches wait for the store. When the store is slow the
  consumer pauses its partitions (Kafka keeps the backlog; memory stays flat) and resumes by itself.
- A store outage means retries and lag, never loss: the writer retries until it succeeds or the worker
  stops (then the batch is simply re-read after restart).
- The watermark (per partition, in Redis) only moves after the store acknowledged the batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError, SchemaError, VectorStoreError
from livectx.kafka import admin_client, consumer, producer, require_reachable
from livectx.metrics import percentile
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.vectors.embedder import Embedder
from livectx.vectors.records import VectorRecord
from livectx.vectors.sources import TEXT_SOURCES, Delete, TextSource, Upsert, to_change
from livectx.vectors.store import VectorStore, open_vector_store
from livectx.vectors.watermark import IndexWatermark
from livectx_ingest.dead_letter import DeadLetterPublisher
from livectx_ingest.embeddings.batcher import MicroBatcher
from livectx_ingest.offsets import committed_reached, end_offsets

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)

Position = tuple[str, int]


@dataclass
class Consumed:
    """One consumed record, classified. ``change`` is ``None`` for a dead-lettered record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    change: Upsert | Delete | None


@dataclass
class WriteJob:
    records: list[VectorRecord]
    deletes: list[str]
    positions: dict[Position, int]
    timestamps_ms: list[int]


@dataclass
class EmbeddingStats:
    consumed: int = 0
    embedded: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    batches: int = 0
    store_retries: int = 0
    pauses: int = 0
    searchable_ms: list[float] = field(default_factory=list)  # produce timestamp -> watermark advanced
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, float | int | None]:
        recent = self.searchable_ms[-10_000:]
        return {
            "consumed": self.consumed,
            "embedded": self.embedded,
            "deleted": self.deleted,
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
            "store_retries": self.store_retries,
            "pauses": self.pauses,
            "searchable_p50_ms": percentile(recent, 50) if recent else None,
            "searchable_p99_ms": percentile(recent, 99) if recent else None,
            "texts_per_s": self.embedded / max(1e-9, time.monotonic() - self.started),
        }


class EmbeddingWorker:
    def __init__(
        self,
        settings: Settings,
        *,
        consumer_group: str = "livectx-embeddings",
        worker_id: str = "0",
        topic_map: dict[str, str] | None = None,
        sources: Sequence[TextSource] | None = None,
        store: VectorStore | None = None,
        embedder: Embedder | None = None,
        batch_size: int | None = None,
        max_wait_ms: int | None = None,
        max_pending: int = 2,
        dead_letter_topic: str | None = None,
        on_progress: Callable[[EmbeddingStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.group = consumer_group
        chosen = list(sources or TEXT_SOURCES.values())
        topic_map = topic_map or {}
        # The topic actually read -> its declaration (a test or a migration may read a renamed topic).
        self.sources = {topic_map.get(s.topic, s.topic): s for s in chosen}
        self.store = store or open_vector_store(settings)
        self.embedder = embedder or Embedder(settings.embedding.model, settings.embedding.device)
        self.batch_size = batch_size or settings.embedding.batch_size
        max_wait_s = (max_wait_ms or settings.embedding.max_wait_ms) / 1000
        self.max_chars = settings.embedding.max_text_chars
        self.watermark = IndexWatermark(redis_client(settings), settings.vector.index)
        self._batcher: MicroBatcher[Consumed] = MicroBatcher(self.batch_size, max_wait_s)
        self._jobs: queue.Queue[WriteJob | None] = queue.Queue(maxsize=max_pending)
        self._done: queue.Queue[WriteJob] = queue.Queue()
        self._in_flight = 0
        self._stopping = threading.Event()  # the consumer loop: stop reading, flush, commit
        self._closed = threading.Event()  # the writer: give up retrying (the batch is re-read after restart)
        self._writer_error: BaseException | None = None
        self._paused = False
        self._on_progress = on_progress
        self.stats = EmbeddingStats()
        self._consumer: Consumer = consumer(
            settings,
            consumer_group,
            **{"client.id": f"livectx-embeddings-{worker_id}", "queued.max.messages.kbytes": 8192},
        )
        self._dlq = DeadLetterPublisher(
            producer(settings), dead_letter_topic or settings.kafka.dead_letter_topic, f"embeddings-{worker_id}"
        )

    def stop(self) -> None:
        self._stopping.set()

    # -- the consumer thread --------------------------------------------------------------------------------

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> EmbeddingStats:
        require_reachable(self.settings)
        self.embedder.load()
        self.store.ensure_index(self.embedder.name, self.embedder.dim)
        targets = end_offsets(self.settings, list(self.sources)) if until_caught_up else None
        admin = admin_client(self.settings) if until_caught_up else None
        writer = threading.Thread(target=self._write_loop, name="livectx-vector-writer", daemon=True)
        writer.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        next_probe = 0.0
        self._consumer.subscribe(list(self.sources), on_revoke=self._on_revoke)
        self.stats.started = time.monotonic()  # throughput counts from here, not from the model load
        log.info("embedding worker: %s -> %s index %s", ", ".join(self.sources), self.store.name, self.watermark.key)
        try:
            while not self._stopping.is_set():
                self._raise_writer_error()
                self._commit_done()
                if self._apply_backpressure():
                    continue
                left = self._batcher.time_left()
                timeout = 0.1 if left is None else min(0.1, left)
                for message in self._consumer.consume(max(1, self._batcher.room), timeout):
                    self._accept(message)
                if self._batcher.ready():
                    self._dispatch()
                if targets is not None and time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + 0.1
                    if committed_reached(admin, self.group, targets):
                        break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            self._drain(timeout_s=30.0)
        finally:
            self._closed.set()
            with contextlib.suppress(queue.Full):
                self._jobs.put_nowait(None)
            self._consumer.close()
            self.store.close()
        return self.stats

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise LivectxError(f"Kafka consumer failed: {error}")
            log.warning("consumer error (retriable): %s", error)
            return
        self.stats.consumed += 1
        source = self.sources[message.topic()]
        try:
            change: Upsert | Delete | None = to_change(source, message.key(), message.value(), self.max_chars)
        except SchemaError as exc:
            log.warning("dead-lettering %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            self._dlq.publish(message, str(exc))
            self.stats.dead_lettered += 1
            change = None
        _kind, timestamp_ms = message.timestamp()
        self._batcher.add(Consumed(message.topic(), message.partition(), message.offset(), timestamp_ms, change))

    def _dispatch(self) -> None:
        """Embed the closed batch and hand it to the writer (blocks only while the writer queue is full)."""
        items = self._batcher.take()
        if not items:
            return
        latest: dict[str, tuple[Consumed, Upsert | Delete]] = {}
        positions: dict[Position, int] = {}
        for item in items:  # in offset order per partition: the last change to an id wins
            positions[(item.topic, item.partition)] = item.offset + 1
            if item.change is not None:
                latest.pop(item.change.id, None)
                latest[item.change.id] = (item, item.change)
        upserts = [(item, change) for item, change in latest.values() if isinstance(change, Upsert)]
        deletes = [change.id for _item, change in latest.values() if isinstance(change, Delete)]
        vectors = self.embedder.embed([change.text for _item, change in upserts], batch_size=self.batch_size)
        records = [
            VectorRecord(
                id=change.id,
                vector=vector,
                text=change.text,
                source=change.source,
                tenant=change.tenant,
                category=change.category,
                event_ms=change.event_ms,
                topic=item.topic,
                partition=item.partition,
                offset=item.offset,
                metadata=change.metadata,
            )
            for (item, change), vector in zip(upserts, vectors, strict=True)
        ]
        self._dlq.flush()  # dead letters acknowledged before their offsets can be committed
        self._in_flight += 1
        self._jobs.put(WriteJob(records, deletes, positions, [item.timestamp_ms for item in items]))
        self.stats.embedded += len(records)
        self.stats.deleted += len(deletes)

    def _apply_backpressure(self) -> bool:
        """Pause the partitions while the writer is saturated; True while paused (the loop only polls)."""
        if self._jobs.full():
            if not self._paused:
                assignment = self._consumer.assignment()
                if assignment:
                    self._consumer.pause(assignment)
                self._paused = True
                self.stats.pauses += 1
                log.info("vector store is behind: pausing consumption (backlog stays in Kafka)")
            # Keep polling (group membership, rebalances) without taking more than the open batch holds;
            # a record fetched before the pause took effect is kept, never dropped.
            if self._batcher.room:
                for message in self._consumer.consume(self._batcher.room, 0.0):
                    self._accept(message)
            with contextlib.suppress(queue.Empty):
                self._take_done(timeout_s=0.1)
            return True
        if self._paused:
            assignment = self._consumer.assignment()
            if assignment:
                self._consumer.resume(assignment)
            self._paused = False
            log.info("vector store caught up: resuming consumption")
        return False

    def _take_done(self, timeout_s: float) -> None:
        job = self._done.get(timeout=timeout_s)
        self._commit([job, *self._drain_done_queue()])

    def _drain_done_queue(self) -> list[WriteJob]:
        jobs = []
        with contextlib.suppress(queue.Empty):
            while True:
                jobs.append(self._done.get_nowait())
        return jobs

    def _commit_done(self) -> None:
        jobs = self._drain_done_queue()
        if jobs:
            self._commit(jobs)

    def _commit(self, jobs: list[WriteJob]) -> None:
        from confluent_kafka import TopicPartition

        positions: dict[Position, int] = {}
        for job in jobs:
            for key, offset in job.positions.items():
                positions[key] = max(offset, positions.get(key, 0))
        self._in_flight -= len(jobs)
        self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()], asynchronous=False)
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _drain(self, timeout_s: float) -> None:
        """Write and commit everything consumed so far (used on stop and before a rebalance)."""
        self._dispatch()
        deadline = time.monotonic() + timeout_s
        while self._in_flight > 0 and time.monotonic() < deadline:
            self._raise_writer_error()
            with contextlib.suppress(queue.Empty):
                self._take_done(timeout_s=0.1)
        if self._in_flight > 0:
            log.warning("%d batches not confirmed by the vector store: they will be re-read", self._in_flight)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked (%d): committing what was consumed first", len(partitions))
        self._drain(timeout_s=30.0)
        self._paused = False

    def _raise_writer_error(self) -> None:
        if self._writer_error is not None:
            raise LivectxError(f"vector writer failed: {self._writer_error}") from self._writer_error

    # -- the writer thread ----------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None or not self._write_with_retry(job):
                    return
                self.watermark.advance(job.positions)
                now_ms = time.time() * 1000
                self.stats.searchable_ms.extend(now_ms - ts for ts in job.timestamps_ms)
                self.stats.batches += 1
                self._done.put(job)
        except BaseException as exc:  # surfaced on the consumer thread; the worker stops uncommitted
            self._writer_error = exc

    def _write_with_retry(self, job: WriteJob) -> bool:
        pause = 0.05
        while not self._closed.is_set():
            try:
                self.store.delete(job.deletes)
                self.store.upsert(job.records)
                return True
            except VectorStoreError as exc:
                self.stats.store_retries += 1
                log.warning("vector store write failed, retrying in %.2fs: %s", pause, exc)
                self._closed.wait(pause)
                pause = min(pause * 2, 5.0)
        return False


def run_embeddings_worker(settings: Settings, *, until_caught_up: bool = False, **options: Any) -> EmbeddingStats:
    """Run until SIGTERM/SIGINT (or caught up): the CLI's entry point."""
    worker = EmbeddingWorker(settings, **options)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: worker.stop())
    try:
        return worker.run(until_caught_up=until_caught_up)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
