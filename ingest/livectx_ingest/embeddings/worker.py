"""``livectx ingest run embeddings``: text events -> embeddings -> vector store, read-your-writes.

Three threads, so Kafka, the model and the vector store work at the same time:

    consumer thread: poll -> classify (upsert / delete / dead letter) -> the open micro-batch
    embed thread:    take the batch at N texts or T ms after its first record -> embed
    writer thread:   upsert + delete in the store (retried with back-off) -> advance the watermark
    consumer thread: commit the offsets of written batches

Guarantees:
- Offsets are committed only after the batch's vectors are in the store and its dead letters are
  acknowledged, and in the order the batches were taken; vector ids come from the source key, so a crash
  and replay never adds a vector twice.
- Backpressure: at most ``max_pending`` embedded batches wait for the store and one batch fills while
  the model works. When the model or the store falls behind, the consumer pauses its partitions (Kafka
  keeps the backlog; memory stays flat) and resumes by itself.
- A store outage means retries and lag, never loss: the writer retries until it succeeds or the worker
  stops (then the batch is simply re-read after restart).
- The watermark (per partition, in Redis) only moves after the store acknowledged the batch.

The parts, each testable with fakes (:mod:`~livectx_ingest.embeddings.ports`): ``Intake`` (reading and
classifying, under ``Backpressure``), ``OpenBatch`` (the batch the consumer and embed threads share),
``Pipeline`` (the embed and writer threads), ``CommitLedger`` and ``Committer`` (commits in taken order).
This class wires them and runs the consumer loop: a stop or a rebalance drains first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from livectx import prometheus as prom
from livectx.consuming import CaughtUp, PartitionId
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import LivectxError
from livectx.kafka import consumer, producer, require_reachable
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.vectors.embedder import Embedder
from livectx.vectors.sources import TextSource
from livectx.vectors.store import VectorStore, open_vector_store
from livectx.vectors.watermark import IndexWatermark
from livectx.wire import RegistryPause, SchemaCache
from livectx_ingest.embeddings.batcher import MicroBatcher
from livectx_ingest.embeddings.batches import Consumed, EmbeddingStats, WriteJob
from livectx_ingest.embeddings.commits import CommitLedger, Committer
from livectx_ingest.embeddings.intake import Intake
from livectx_ingest.embeddings.open_batch import OpenBatch
from livectx_ingest.embeddings.pipeline import STORE_RETRY_MAX_S, Pipeline
from livectx_ingest.embeddings.ports import DeadLetters, Watermark

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger(__name__)

__all__ = [
    "STORE_RETRY_MAX_S",
    "Consumed",
    "EmbeddingStats",
    "EmbeddingWorker",
    "PartitionId",
    "WriteJob",
    "run_embeddings_worker",
]

#: How long a drain (stop, rebalance) waits for the consumed records to be written and committed.
DRAIN_TIMEOUT_S = 30.0


class EmbeddingWorker:
    """One worker of a consumer group. ``kafka_consumer``, ``dead_letters``, ``watermark`` and ``schemas``
    are made from ``settings`` unless given (tests hand in fakes, as they do ``store`` and ``embedder``)."""

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
        kafka_consumer: Consumer | None = None,
        dead_letters: DeadLetters | None = None,
        watermark: Watermark | None = None,
        schemas: Any = None,
    ) -> None:
        self.settings = settings
        self.group = consumer_group
        self.sources = _sources_by_topic(settings, sources, topic_map or {})
        self.store = store or open_vector_store(settings)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.watermark = watermark or IndexWatermark(redis_client(settings), settings.vector.index)
        self.stats = EmbeddingStats()
        self._stopping = threading.Event()  # the consumer loop: stop reading, flush, commit
        self._consumer: Consumer = kafka_consumer or consumer(
            settings,
            consumer_group,
            **{"client.id": f"livectx-embeddings-{worker_id}", "queued.max.messages.kbytes": 8192},
        )
        dead_letters = dead_letters or DeadLetterPublisher(
            producer(settings), dead_letter_topic or settings.kafka.dead_letter_topic, f"embeddings-{worker_id}"
        )
        batch_size = batch_size or settings.embedding.batch_size
        max_wait_s = (max_wait_ms or settings.embedding.max_wait_ms) / 1000
        ledger = CommitLedger()
        batch = OpenBatch(MicroBatcher(batch_size, max_wait_s), ledger)
        self._pipeline = Pipeline(
            batch,
            ledger,
            self.embedder,
            self.store,
            self.watermark,
            self.stats,
            batch_size=batch_size,
            max_pending=max_pending,
        )
        self._committer = Committer(
            self._consumer,
            dead_letters,
            self.watermark,
            ledger,
            self.stats,
            lag_gauge=prom.VECTOR_LAG.labels(settings.vector.index),
            on_progress=on_progress,
        )
        self._intake = Intake(
            self._consumer,
            self.sources,
            batch,
            dead_letters,
            self.stats,
            max_chars=settings.embedding.max_text_chars,
            schemas=schemas or SchemaCache.from_settings(settings),
            registry_pause=RegistryPause(log),
            stopping=self._stopping,
        )

    def stop(self) -> None:
        self._stopping.set()

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> EmbeddingStats:
        require_reachable(self.settings)
        self.embedder.load()
        self.store.ensure_index(self.embedder.name, self.embedder.dim)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, self.sources)
        self._pipeline.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self._consumer.subscribe(list(self.sources), on_revoke=self._on_revoke)
        self.stats.started = time.monotonic()  # throughput counts from here, not from the model load
        log.info("embedding worker: %s -> %s index %s", ", ".join(self.sources), self.store.name, _key(self.watermark))
        try:
            while not self._stopping.is_set():
                self._pipeline.raise_error()
                self._committer.commit_ready()
                # The embed thread notifies when it takes the batch; full for long, the intake pauses.
                self._intake.step(self._pipeline.batch.room(wait_s=0.05))
                if caught_up is not None and caught_up.reached():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            self._drain(timeout_s=DRAIN_TIMEOUT_S)
        finally:
            self._pipeline.close()
            self._consumer.close()
            CaughtUp.close_if_any(caught_up)
            self._pipeline.join(10)
            self.store.close()
        return self.stats

    def _drain(self, timeout_s: float) -> None:
        """Embed, write and commit everything consumed so far (on stop and before a rebalance)."""
        deadline = time.monotonic() + timeout_s
        with self._pipeline.batch.flushing():
            while time.monotonic() < deadline:
                self._pipeline.raise_error()
                if self._pipeline.batch.settled():
                    return
                self._committer.commit_ready(wait_s=0.05)
            log.warning("unconfirmed batches left after %.0fs: they will be re-read", timeout_s)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._pipeline.closed:  # closing: run() already drained what it could, the threads are gone
            return
        log.info("partitions revoked (%d): committing what was consumed first", len(partitions))
        self._drain(timeout_s=DRAIN_TIMEOUT_S)
        self._intake.backpressure.revoked()


def _sources_by_topic(
    settings: Settings, sources: Sequence[TextSource] | None, topic_map: dict[str, str]
) -> dict[str, TextSource]:
    """The topic actually read -> its declaration (a test or a migration may read a renamed topic); by
    default the repo's memory views."""
    if sources is None:
        from livectx.repo import current_repo

        sources = list(current_repo(settings).memory.values())
    chosen = list(sources)
    if not chosen:
        raise LivectxError("the feature repo declares no memory view: nothing to embed")
    return {topic_map.get(s.topic, s.topic): s for s in chosen}


def _key(watermark: Watermark) -> str:
    """The watermark's Redis key for the start line (a fake watermark may have none)."""
    return str(getattr(watermark, "key", "-"))


def run_embeddings_worker(settings: Settings, *, until_caught_up: bool = False, **options: Any) -> EmbeddingStats:
    """Run until SIGTERM/SIGINT (or caught up): the CLI's entry point."""
    worker = EmbeddingWorker(settings, **options)
    with stop_on_signals(worker.stop):
        return worker.run(until_caught_up=until_caught_up)
