"""``cdc``: a committed row to searchable memory, split by stage, through real Debezium, Kafka and pgvector.

A table of its own (``bench_cdc_<id>`` in ``livectx_app``) is captured with ``livectx cdc apply``'s code (the
tuned config: Debezium's ``poll.interval.ms`` from ``LIVECTX_CDC_POLL_INTERVAL_MS``, ``linger.ms`` 0) and the
embedding worker runs over it in-process with its model and store wrapped to record when each text was
embedded and written. Rows are inserted at a steady rate, one transaction each; per row:

- ``cdc``: commit (Postgres' commit timestamp, Debezium's ``source.ts_ms``) -> the record's Kafka timestamp
  (set when Connect's producer sent it);
- ``kafka``: Kafka timestamp -> the worker's model starts on the batch holding it (fetch + micro-batch wait);
- ``embedding``: the model's work on that batch;
- ``index``: embedded -> the pgvector upsert of its batch returned (the watermark moves right after);
- ``searchable`` = commit -> upsert returned, the sum. All clocks are this machine's (milliseconds).
Needs the stack with Kafka Connect: ``livectx stack up --with cdc``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from feast import Entity, ValueType
from feast.data_format import JsonFormat
from livectx_ingest.embeddings.worker import EmbeddingWorker

from livectx.cdc import manage
from livectx.cdc.database import connect
from livectx.kafka import admin_client, consumer
from livectx.metrics import percentile
from livectx.repo.cdc import cdc_source
from livectx.repo.compile import compile_memory, compile_source
from livectx.repo.declare import memory_view
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply
from livectx.vectors.embedder import Embedder
from livectx.vectors.pgvector_store import PgVectorStore
from livectx_benchmarks.result import BenchResult

RATE = 10.0
SECONDS = 20.0
STAGES = ("cdc", "kafka", "embedding", "index", "searchable")


class TimedEmbedder:
    """The real model; records (start, end) of the call that embedded each text."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.times: dict[str, tuple[float, float]] = {}

    def load(self) -> TimedEmbedder:
        self.inner.load()
        return self

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        start = time.time()
        vectors = self.inner.embed(texts, batch_size)
        end = time.time()
        self.times.update((t, (start, end)) for t in texts)
        return vectors


class TimedStore:
    """The real pgvector store; records when the upsert holding each vector id returned."""

    def __init__(self, inner: PgVectorStore) -> None:
        self.inner, self.name = inner, inner.name
        self.written: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, records: Sequence[Any]) -> None:
        self.inner.upsert(records)
        now = time.time()
        self.written.update((r.id, now) for r in records)


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    tag = uuid.uuid4().hex[:8]
    source = cdc_source(
        name=f"bench_cdc_{tag}", table=f"bench_cdc_{tag}", topic=f"livectx.bench.cdc.{tag}",
        schema=JsonFormat("row_id STRING, body STRING DEFAULT NULL"), key="row_id", partitions=1,
    )  # fmt: skip
    entity = Entity(name="row", join_keys=["row_id"], value_type=ValueType.STRING)
    spec = compile_source(source, "row_id")
    memory = compile_memory(
        memory_view(name=f"bench_cdc_{tag}_memory", source=source, entity=entity, text=["body"]), spec
    )
    table = spec.cdc
    assert table is not None
    apply(admin_client(settings), [TopicSpec(table.topic, 1, {"retention.ms": "3600000"})])
    with connect(table, settings) as conn:
        conn.execute(f"CREATE TABLE {table.table} (row_id text PRIMARY KEY, body text NOT NULL)")
    embedder = TimedEmbedder(Embedder.from_settings(settings))
    store = TimedStore(PgVectorStore.from_settings(settings, index=f"bench_cdc_{tag}"))
    worker = EmbeddingWorker(
        settings, consumer_group=f"livectx-bench-cdc-{tag}", sources=[memory], store=store, embedder=embedder
    )  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        manage.apply(settings, [table])
        thread.start()
        _insert(table, settings, "warm", 20, RATE)  # group join, first fetch, the connector's first send
        _wait(lambda: sum(k.startswith(f"{spec.name}:warm") for k in store.written) >= 20, 120)
        count = max(20, int(RATE * SECONDS * scale))
        _insert(table, settings, "row", count, RATE)
        ids = [f"{spec.name}:row{i:06d}" for i in range(count)]
        _wait(lambda: all(i in store.written for i in ids), 120)
        kafka_ms = _kafka_timestamps(settings, table.topic, count + 20)
        with connect(table, settings) as conn:
            texts = dict(conn.execute(f"SELECT row_id, body FROM {table.table}").fetchall())
    finally:
        worker.stop()
        if thread.is_alive():
            thread.join(60)
        manage.drop(settings, [table])
        with connect(table, settings) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table.table}")
        store.inner.drop()
        store.inner.close()
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(count):
        key = f"row{i:06d}"
        committed_ms, sent_ms = kafka_ms[key]
        embed_start, embed_end = embedder.times[texts[key]]
        written = store.written[f"{spec.name}:{key}"]
        samples["cdc"].append(sent_ms - committed_ms)
        samples["kafka"].append(embed_start * 1000 - sent_ms)
        samples["embedding"].append((embed_end - embed_start) * 1000)
        samples["index"].append((written - embed_end) * 1000)
        samples["searchable"].append(written * 1000 - committed_ms)
    result = BenchResult("cdc")
    for stage, values in samples.items():
        result.figures[f"{stage}_p50_ms"] = percentile(values, 50)
        result.figures[f"{stage}_p99_ms"] = percentile(values, 99)
    result.figures["rows"] = float(count)
    result.figures["rate_rows_per_s"] = RATE
    result.figures["poll_interval_ms"] = float(settings.cdc.poll_interval_ms)
    result.notes.append(
        f"{count} rows committed one per transaction at {RATE:g}/s; stages per row: cdc = commit -> Kafka "
        "timestamp, kafka -> the model starts on its batch, embedding, index = embedded -> upsert returned"
    )
    return result


def _insert(table: Any, settings: Settings, prefix: str, count: int, rate: float) -> None:
    with connect(table, settings) as conn:
        started = time.monotonic()
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the writes at the target rate (not synchronisation)
            conn.execute(
                f"INSERT INTO {table.table} VALUES (%s, %s)",
                (f"{prefix}{i:06d}", f"Review {prefix} {i}: the kettle {i * 7919 % 100_003} boils fast."),
            )


def _wait(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the CDC pipeline did not make every row searchable in time")
        time.sleep(0.02)


def _kafka_timestamps(settings: Settings, topic: str, expected: int) -> dict[str, tuple[int, int]]:
    """Per row key: (commit ms from the envelope, the record's Kafka timestamp)."""
    import json

    reader = consumer(settings, f"livectx-bench-cdc-reader-{uuid.uuid4().hex[:8]}")
    reader.subscribe([topic])
    found: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for m in reader.consume(500, 0.5):
                if m.error() is None and m.value():
                    found[m.key().decode()] = (json.loads(m.value())["source"]["ts_ms"], m.timestamp()[1])
    finally:
        reader.close()
    return found
