"""What moves between the embedding worker's threads: a classified record, an embedded batch waiting for
the store, and the worker's counters. :func:`embed_batch` is the embed thread's work on one batch, pure
but for the model call, so the "last change to an id wins" rule is testable with a fake embedder."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from livectx import prometheus as prom
from livectx.consuming import PartitionId
from livectx.metrics import percentile
from livectx.vectors.records import VectorRecord
from livectx.vectors.sources import Delete, Upsert
from livectx_ingest.embeddings.ports import TextEmbedder


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
    """An embedded batch on its way to the store. ``positions`` are the offsets to commit once it is written
    (next offset per partition); ``seq`` is its place in the order the batches were taken, which is the
    order their offsets may be committed in (:class:`~livectx_ingest.embeddings.commits.CommitLedger`)."""

    records: list[VectorRecord]
    deletes: list[str]
    positions: dict[PartitionId, int]
    timestamps_ms: list[int]
    newest_event_ms: int | None = None
    seq: int = 0


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


def embed_batch(items: list[Consumed], embedder: TextEmbedder, batch_size: int, seq: int = 0) -> WriteJob:
    """One forward pass for the batch. Items are in offset order per partition, so the last change to an id
    wins (an update then a delete of one id in a batch is a delete); the positions cover dead letters too,
    so they are committed with the batch."""
    latest: dict[str, tuple[Consumed, Upsert | Delete]] = {}
    positions: dict[PartitionId, int] = {}
    for item in items:
        positions[(item.topic, item.partition)] = item.offset + 1
        if item.change is not None:
            latest.pop(item.change.id, None)
            latest[item.change.id] = (item, item.change)
    upserts = [(item, change) for item, change in latest.values() if isinstance(change, Upsert)]
    deletes = [change.id for _item, change in latest.values() if isinstance(change, Delete)]
    began = time.perf_counter()
    vectors = embedder.embed([change.text for _item, change in upserts], batch_size=batch_size)
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
    newest = max((r.event_ms for r in records), default=None)
    return WriteJob(records, deletes, positions, [item.timestamp_ms for item in items], newest, seq)
