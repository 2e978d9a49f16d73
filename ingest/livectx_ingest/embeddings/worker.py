"""``livectx ingest run embeddings``: text events -> embeddings -> vector store, read-your-writes.

Three threads, so Kafka, the model and the vector store work at the same time:

    consumer thread: poll -> classify (upsert / delete / dead letter) -> the open micro-batch
    embed thread:    take the batch at N texts or T ms after its first record -> embed
    writer thread:   upsert + delete in the store (retried with back-off) -> advance the watermark
    consumer thread: commit the offsets of written batches

Guarantees:
- Offsets are committed only after the batch's vectors are in the store and its dead letters are
  acknowledged; vector ids come from the source key, so a crash and replay never adds a vector twice.
- Backpressure: at most ``max_pending`` embedded batches wait for the store and one batch fills while
  the model works. When the model or the store falls behind, the consumer pauses its partitions (Kafka
  keeps the backlog; memory stays flat) and resumes by itself.
- A store outage means retries and lag, never loss: the writer retries until it succeeds or the worker
  stops (then the batch is simply re-read after restart).
- The watermark (per partition, in Redis) only moves after the store acknowledged the batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx import prometheus as prom
from livectx import tracing
from livectx.consuming import CaughtUp, assigned_lag, is_record
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import LivectxError, RegistryUnavailable, SchemaError, VectorStoreError
from livectx.kafka import consumer, producer, require_reachable
from livectx.metrics import percentile
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.vectors.embedder import Embedder
from livectx.vectors.records import VectorRecord
from livectx.vectors.sources import Delete, TextSource, Upsert, to_change
from livectx.vectors.store import VectorStore, open_vector_store
from livectx.vectors.watermark import IndexWatermark
from livectx.wire import RegistryPause, SchemaCache
from livectx_ingest.embeddings.batcher import MicroBatcher

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
    trace: Any = None  # the record's trace context, only while tracing is on (livectx.tracing)


@dataclass
class WriteJob:
    records: list[VectorRecord]
    deletes: list[str]
    positions: dict[Position, int]
    timestamps_ms: list[int]
    newest_event_ms: int | None = None


@dataclass
class EmbeddingStats:
    consumed: int = 0
    embedded: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    batches: int = 0
    store_retries: int = 0
    pauses: int = 0
    #: produce timestamp -> watermark advanced, for the most recent records (bounded: a worker runs for months)
    searchable_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    started: float = field(default_factory=time.monotonic)
    first_record: float | None = None  # monotonic time the first record arrived (throughput counts from here)
    last_write: float | None = None  # monotonic time the latest batch became searchable

    def summary(self) -> dict[str, float | int | None]:
        recent = list(self.searchable_ms)[-10_000:]
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
            "texts_per_s": self.embedded / max(1e-9, time.monotonic() - (self.first_record or self.started)),
        }


#: The longest wait between two writes to a store that does not answer.
STORE_RETRY_MAX_S = 5.0


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
        if sources is None:
            from livectx.repo import current_repo

            sources = list(current_repo(settings).memory.values())
        chosen = list(sources)
        if not chosen:
            raise LivectxError("the feature repo declares no memory view: nothing to embed")
        topic_map = topic_map or {}
        # The topic actually read -> its declaration (a test or a migration may read a renamed topic).
        self.sources = {topic_map.get(s.topic, s.topic): s for s in chosen}
        self.store = store or open_vector_store(settings)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.batch_size = batch_size or settings.embedding.batch_size
        max_wait_s = (max_wait_ms or settings.embedding.max_wait_ms) / 1000
        self.max_chars = settings.embedding.max_text_chars
        self.watermark = IndexWatermark(redis_client(settings), settings.vector.index)
        self._lag_gauge = prom.VECTOR_LAG.labels(settings.vector.index)
        # The open batch, shared by the consumer thread (adds) and the embed thread (takes).
        self._batch_lock = threading.Condition()
        self._batcher: MicroBatcher[Consumed] = MicroBatcher(self.batch_size, max_wait_s)
        self._flush = False  # take the open batch now, ready or not (stop, rebalance)
        self._in_flight = 0  # batches taken by the embed thread and not yet committed
        self._jobs: queue.Queue[WriteJob | None] = queue.Queue(maxsize=max_pending)
        self._done: queue.Queue[WriteJob] = queue.Queue()
        self._stopping = threading.Event()  # the consumer loop: stop reading, flush, commit
        self._closed = threading.Event()  # embed + writer threads: exit (unfinished batches are re-read)
        self._thread_error: BaseException | None = None
        self._paused = False
        self._committed: dict[Position, int] = {}
        self._newest_event_ms: int | None = None
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
        self._schemas = SchemaCache.from_settings(settings)
        self._registry_pause = RegistryPause(log)

    def stop(self) -> None:
        self._stopping.set()

    # -- the consumer thread --------------------------------------------------------------------------------

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> EmbeddingStats:
        require_reachable(self.settings)
        self.embedder.load()
        self.store.ensure_index(self.embedder.name, self.embedder.dim)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, self.sources)
        threads = [
            threading.Thread(target=self._guarded(self._embed_loop), name="livectx-embedder", daemon=True),
            threading.Thread(target=self._guarded(self._write_loop), name="livectx-vector-writer", daemon=True),
        ]
        for thread in threads:
            thread.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        stalled_since: float | None = None
        self._consumer.subscribe(list(self.sources), on_revoke=self._on_revoke)
        self.stats.started = time.monotonic()  # throughput counts from here, not from the model load
        log.info("embedding worker: %s -> %s index %s", ", ".join(self.sources), self.store.name, self.watermark.key)
        try:
            while not self._stopping.is_set():
                self._raise_thread_error()
                self._commit_done()
                with self._batch_lock:
                    if not self._batcher.room:  # the embed thread notifies when it takes the batch
                        self._batch_lock.wait(0.05)
                    room = self._batcher.room
                if room:
                    stalled_since = None
                    self._set_paused(False)
                    self._poll(room)
                else:
                    # Full while the model works is normal; still full after a second means the store or
                    # the model is behind: pause the partitions (Kafka keeps the backlog) but keep polling
                    # so the group sees this worker alive.
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 1.0:
                        self._set_paused(True)
                        self._poll(1, timeout_s=0.0)
                if caught_up is not None and caught_up.reached():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            self._drain(timeout_s=30.0)
        finally:
            self._closed.set()
            with self._batch_lock:
                self._batch_lock.notify_all()
            with contextlib.suppress(queue.Full):
                self._jobs.put_nowait(None)
            self._consumer.close()
            for thread in threads:
                thread.join(10)
            self.store.close()
        return self.stats

    def _poll(self, room: int, timeout_s: float = 0.05) -> None:
        """Wait for the first record, then take what is already fetched (up to ``room``): records reach the
        open batch as they arrive instead of after a fixed consume timeout."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return
        messages = [first, *(self._consumer.consume(room - 1, 0) if room > 1 else ())]
        # A record the registry must be asked about while it does not answer is not dead-lettered: its
        # partition is sought back to it (nothing after it is taken) and read again after a wait.
        held: dict[tuple[str, int], int] = {}
        reason = ""
        for message in messages:
            tp = (message.topic(), message.partition())
            if tp in held:
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
        source = self.sources[message.topic()]
        try:
            change: Upsert | Delete | None = to_change(
                source, message.key(), message.value(), self.max_chars, self._schemas
            )  # RegistryUnavailable: not taken (nor counted); the caller reads it again
        except SchemaError as exc:
            log.warning("dead-lettering %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            self._dlq.publish(message, str(exc))
            self.stats.dead_lettered += 1
            change = None
        self.stats.consumed += 1
        if self.stats.first_record is None:
            self.stats.first_record = time.monotonic()
        _kind, timestamp_ms = message.timestamp()
        consumed = Consumed(
            message.topic(), message.partition(), message.offset(), timestamp_ms, change, tracing.context_of(message)
        )
        with self._batch_lock:
            # A record fetched before a pause took effect may overflow the batch a little: kept, never dropped.
            self._batcher.add(consumed)
            self._batch_lock.notify_all()

    def _set_paused(self, paused: bool) -> None:
        """Backpressure: while the open batch is full (embedder and store behind), Kafka keeps the backlog."""
        if paused == self._paused:
            return
        assignment = self._consumer.assignment()
        if paused:
            if assignment:
                self._consumer.pause(assignment)
            self.stats.pauses += 1
            log.info("embedder or vector store is behind: pausing consumption (the backlog stays in Kafka)")
        else:
            if assignment:
                self._consumer.resume(assignment)
            log.info("caught up: resuming consumption")
        self._paused = paused

    def _commit_done(self, wait_s: float = 0.0) -> None:
        """Commit the offsets of every batch the writer finished (after its dead letters are acknowledged)."""
        from confluent_kafka import TopicPartition

        jobs = []
        with contextlib.suppress(queue.Empty):
            jobs.append(self._done.get(timeout=wait_s) if wait_s > 0 else self._done.get_nowait())
            while True:
                jobs.append(self._done.get_nowait())
        if not jobs:
            return
        positions: dict[Position, int] = {}
        for job in jobs:
            for key, offset in job.positions.items():
                positions[key] = max(offset, positions.get(key, 0))
        self._dlq.flush()
        self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()], asynchronous=False)
        with self._batch_lock:
            self._in_flight -= len(jobs)
        self._committed.update(positions)
        newest = max((job.newest_event_ms for job in jobs if job.newest_event_ms is not None), default=None)
        self._newest_event_ms = max(newest or 0, self._newest_event_ms or 0) or None
        lag = self._lag()
        self.watermark.publish_status(lag, self._newest_event_ms, int(time.time() * 1000))
        if lag is not None:
            self._lag_gauge.set(lag)
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _lag(self) -> int | None:
        return assigned_lag(self._consumer, self._committed)

    def _drain(self, timeout_s: float) -> None:
        """Embed, write and commit everything consumed so far (on stop and before a rebalance)."""
        deadline = time.monotonic() + timeout_s
        with self._batch_lock:
            self._flush = True
            self._batch_lock.notify_all()
        try:
            while time.monotonic() < deadline:
                self._raise_thread_error()
                with self._batch_lock:
                    if not len(self._batcher) and self._in_flight == 0:
                        return
                self._commit_done(wait_s=0.05)
            log.warning("unconfirmed batches left after %.0fs: they will be re-read", timeout_s)
        finally:
            with self._batch_lock:
                self._flush = False

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._closed.is_set():  # closing: run() already drained what it could, the threads are gone
            return
        log.info("partitions revoked (%d): committing what was consumed first", len(partitions))
        self._drain(timeout_s=30.0)
        self._paused = False

    def _raise_thread_error(self) -> None:
        if self._thread_error is not None:
            raise LivectxError(f"embedding worker thread failed: {self._thread_error}") from self._thread_error

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except BaseException as exc:  # surfaced on the consumer thread; the worker stops uncommitted
                self._thread_error = exc

        return run

    # -- the embed thread -----------------------------------------------------------------------------------

    def _embed_loop(self) -> None:
        """Take the batch when it is ready (N texts, or T since its first record), embed it, hand it on.

        While this thread is busy the next batch keeps filling, so under load batches are full (throughput)
        and under light load a text waits at most T before its forward pass (freshness)."""
        while True:
            with self._batch_lock:
                while not self._closed.is_set() and not (self._batcher.ready() or (self._flush and len(self._batcher))):
                    self._batch_lock.wait(self._batcher.time_left() or 0.5)
                if self._closed.is_set():
                    return
                items = self._batcher.take()
                self._in_flight += 1
                self._batch_lock.notify_all()  # room again for the consumer thread
            with tracing.batch_span("livectx.embeddings batch", contexts=(i.trace for i in items), records=len(items)):
                job = self._embed(items)  # one span per batch, linked to its traced records
            while not self._closed.is_set():
                with contextlib.suppress(queue.Full):
                    self._jobs.put(job, timeout=0.1)  # blocks while the writer is behind: backpressure
                    break

    def _embed(self, items: list[Consumed]) -> WriteJob:
        latest: dict[str, tuple[Consumed, Upsert | Delete]] = {}
        positions: dict[Position, int] = {}
        for item in items:  # in offset order per partition: the last change to an id wins
            positions[(item.topic, item.partition)] = item.offset + 1
            if item.change is not None:
                latest.pop(item.change.id, None)
                latest[item.change.id] = (item, item.change)
        upserts = [(item, change) for item, change in latest.values() if isinstance(change, Upsert)]
        deletes = [change.id for _item, change in latest.values() if isinstance(change, Delete)]
        began = time.perf_counter()
        vectors = self.embedder.embed([change.text for _item, change in upserts], batch_size=self.batch_size)
        if upserts:
            prom.EMBED_BATCH.observe(len(upserts))
            prom.EMBED_SECONDS.observe(time.perf_counter() - began)
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
        self.stats.embedded += len(records)
        self.stats.deleted += len(deletes)
        newest = max((r.event_ms for r in records), default=None)
        return WriteJob(records, deletes, positions, [item.timestamp_ms for item in items], newest)

    # -- the writer thread ----------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or not self._write_with_retry(job):
                return
            self.watermark.advance(job.positions)
            now_ms = time.time() * 1000
            self.stats.searchable_ms.extend(now_ms - ts for ts in job.timestamps_ms)
            self.stats.batches += 1
            self.stats.last_write = time.monotonic()
            self._done.put(job)

    def _write_with_retry(self, job: WriteJob) -> bool:
        """Write the batch, retrying a store outage (a Postgres restart) with a bounded backoff. One warning
        when the outage starts, one every 30 s while it lasts and one when the store answers again, not a
        line per retry: nothing is committed past the batch meanwhile, and the consumer pauses once the
        pending batches are full."""
        pause, since, logged = 0.05, 0.0, 0.0
        while not self._closed.is_set():
            try:
                self.store.delete(job.deletes)
                self.store.upsert(job.records)
                if since:
                    log.warning("vector store answers again after %.1fs: writing resumes", time.monotonic() - since)
                return True
            except VectorStoreError as exc:
                self.stats.store_retries += 1
                reason, now = " ".join(str(exc).split()), time.monotonic()  # psycopg's messages span lines
                if not since:
                    since = logged = now
                    log.warning(
                        "vector store unavailable (%s): holding the batch, retrying with a backoff up to %.0fs",
                        reason,
                        STORE_RETRY_MAX_S,
                    )
                elif now - logged >= 30.0:
                    logged = now
                    log.warning("vector store still unavailable after %.0fs: %s", now - since, reason)
                self._closed.wait(pause)
                pause = min(pause * 2, STORE_RETRY_MAX_S)
        return False


def run_embeddings_worker(settings: Settings, *, until_caught_up: bool = False, **options: Any) -> EmbeddingStats:
    """Run until SIGTERM/SIGINT (or caught up): the CLI's entry point."""
    worker = EmbeddingWorker(settings, **options)
    with stop_on_signals(worker.stop):
        return worker.run(until_caught_up=until_caught_up)
