"""The embed thread and the vector-writer thread, so the model and the store work while Kafka is read.

    embed thread:  take the open batch when ready -> embed -> hand it to the writer (at most
                   ``max_pending`` wait: the embed thread blocks, the batch fills, the consumer pauses)
    writer thread: delete + upsert in the store (retried with back-off) -> advance the watermark -> the
                   batch is finished in the :class:`~livectx_ingest.embeddings.commits.CommitLedger`

A failure on either thread is kept and raised on the consumer thread (:meth:`Pipeline.raise_error`): the
worker then stops without committing, and the unfinished batches are re-read after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from livectx import tracing
from livectx.errors import LivectxError, VectorStoreError
from livectx_ingest.embeddings.batches import EmbeddingStats, WriteJob, embed_batch
from livectx_ingest.embeddings.commits import CommitLedger
from livectx_ingest.embeddings.open_batch import OpenBatch
from livectx_ingest.embeddings.ports import TextEmbedder, VectorWriter, Watermark

# The worker's lines keep the worker's logger name however it is split (operators filter on it).
log = logging.getLogger("livectx_ingest.embeddings.worker")

#: The longest wait between two writes to a store that does not answer.
STORE_RETRY_MAX_S = 5.0


class Pipeline:
    """Owns the two threads and what they share: the queue of embedded batches and the "closed" signal."""

    def __init__(
        self,
        batch: OpenBatch,
        ledger: CommitLedger,
        embedder: TextEmbedder,
        store: VectorWriter,
        watermark: Watermark,
        stats: EmbeddingStats,
        *,
        batch_size: int,
        max_pending: int,
    ) -> None:
        self.batch = batch
        self._ledger = ledger
        self._embedder = embedder
        self._store = store
        self._watermark = watermark
        self._stats = stats
        self._batch_size = batch_size
        self._jobs: queue.Queue[WriteJob | None] = queue.Queue(maxsize=max_pending)
        self._closed = threading.Event()  # both threads: exit (unfinished batches are re-read)
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._guarded(self._embed_loop), name="livectx-embedder", daemon=True),
            threading.Thread(target=self._guarded(self._write_loop), name="livectx-vector-writer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Tell both threads to exit, without waiting (see :meth:`join`)."""
        self._closed.set()
        self.batch.wake()
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)

    def join(self, timeout_s: float) -> None:
        for thread in self._threads:
            thread.join(timeout_s)

    def raise_error(self) -> None:
        if self._error is not None:
            raise LivectxError(f"embedding worker thread failed: {self._error}") from self._error

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except BaseException as exc:  # surfaced on the consumer thread; the worker stops uncommitted
                self._error = exc

        return run

    def _embed_loop(self) -> None:
        while True:
            taken = self.batch.take(self._closed)
            if taken is None:
                return
            seq, items = taken
            with tracing.batch_span("livectx.embeddings batch", contexts=(i.trace for i in items), records=len(items)):
                job = embed_batch(items, self._embedder, self._batch_size, seq)  # one span per batch
            self._stats.embedded += len(job.records)
            self._stats.deleted += len(job.deletes)
            while not self._closed.is_set():
                with contextlib.suppress(queue.Full):
                    self._jobs.put(job, timeout=0.1)  # blocks while the writer is behind: backpressure
                    break

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or not write_with_retry(self._store, job, self._closed, self._stats):
                return
            self._watermark.advance(job.positions)
            now_ms = time.time() * 1000
            self._stats.searchable_ms.extend(now_ms - ts for ts in job.timestamps_ms)
            self._stats.batches += 1
            self._stats.last_write = time.monotonic()
            self._ledger.finish(job)


def write_with_retry(store: VectorWriter, job: WriteJob, closed: threading.Event, stats: EmbeddingStats) -> bool:
    """Write the batch, retrying a store outage (a Postgres restart) with a bounded backoff; ``False`` when
    the worker closed first. One warning when the outage starts, one every 30 s while it lasts and one when
    the store answers again, not a line per retry: nothing is committed past the batch meanwhile, and the
    consumer pauses once the pending batches are full."""
    pause, since, logged = 0.05, 0.0, 0.0
    while not closed.is_set():
        try:
            store.delete(job.deletes)
            store.upsert(job.records)
            if since:
                log.warning("vector store answers again after %.1fs: writing resumes", time.monotonic() - since)
            return True
        except VectorStoreError as exc:
            stats.store_retries += 1
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
            closed.wait(pause)
            pause = min(pause * 2, STORE_RETRY_MAX_S)
    return False
