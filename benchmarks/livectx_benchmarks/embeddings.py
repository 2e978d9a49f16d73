"""``embeddings``: the semantic-memory pipeline against its own baselines, measured in one run.

1. Throughput. The bare model embeds N texts batch by batch (the baseline: ``raw_texts_per_s``); then the
   same N texts are produced to Kafka and the embedding worker consumes, embeds and upserts them into
   pgvector until its group has committed the end (``pipeline_texts_per_s``, from its first record).
   ``ratio`` = pipeline / raw. Both use the backend in use (``LIVECTX_EMBEDDING_BACKEND``, ``auto``: fp32
   ONNX Runtime on a CPU, torch on CUDA).
2. Event-to-searchable latency. With the worker running, texts are produced at a steady ``rate``; for
   every record, latency = when the worker published the watermark covering it (vectors committed and
   searchable) - its Kafka produce timestamp.
3. Query latency and recall at ``vectors`` (100,000) vectors: clustered unit vectors shaped like
   sentence embeddings (many topics, a spread inside each) are bulk-loaded into an HNSW index; top-10
   queries (perturbed members, not in the index) are timed through the store's ``search``; recall@10 is
   measured against exact brute-force search.
4. The CPU backends side by side (``livectx_benchmarks.embedding_backends``): ``torch_texts_per_s``,
   ``onnx_texts_per_s``, ``onnx_speedup``, ``onnx_recall_at_10``, ``onnx_mean_cosine`` and the same for
   ``onnx_int8_*``, on the same texts and batch (also ``livectx bench embedding-backends``, no stack).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from livectx_ingest.embeddings.worker import EmbeddingWorker

from livectx import serde
from livectx.events import Event
from livectx.kafka import admin_client, producer, require_reachable
from livectx.metrics import percentile
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply
from livectx.vectors.embedder import Embedder
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorRecord
from livectx_benchmarks import embedding_backends, example
from livectx_benchmarks.result import BenchResult

TEXTS = 2_000
RATE = 50.0
STEADY_SECONDS = 20.0
VECTORS = 100_000
QUERIES = 300
TOP_K = 10

SUBJECTS = ("refund", "parcel", "password", "invoice", "subscription", "router", "laptop", "coupon", "account")
PROBLEMS = (
    "has not arrived after two weeks",
    "was charged twice on my card",
    "stopped working after the last update",
    "shows the wrong amount at checkout",
    "cannot be changed in the settings page",
    "was cancelled without any notice",
)


def _texts(count: int, salt: int = 0) -> list[Event]:
    start = datetime.now(UTC)
    document = example.model(example.DOCUMENTS)
    return [
        document(
            event_time=start + timedelta(milliseconds=i),
            doc_id=f"b{salt}-{i}",
            title=f"{SUBJECTS[i % len(SUBJECTS)]} issue {i + salt}",
            text=f"My {SUBJECTS[(i * 7) % len(SUBJECTS)]} {PROBLEMS[i % len(PROBLEMS)]}, order {i * 7919 % 100_003}.",
        )
        for i in range(count)
    ]


def run(settings: Settings, scale: float = 1.0, rate: float = RATE) -> BenchResult:
    require_reachable(settings)
    tag = uuid.uuid4().hex[:8]
    embedder = Embedder.from_settings(settings).load()
    batch_size = settings.embedding.batch_size
    count = max(200, int(TEXTS * scale))
    docs = _texts(count)
    texts = [f"{d.title}\n{d.text}" for d in docs]

    # The baseline: the bare model on the same texts, batch after batch of the worker's batch size, in
    # the order the worker sees them (one call over all texts would length-sort across batches, which a
    # stream cannot do).
    started = time.perf_counter()
    for start in range(0, count, batch_size):
        embedder.embed(texts[start : start + batch_size], batch_size=batch_size)
    raw_per_s = count / (time.perf_counter() - started)
    backends = embedding_backends.compare(settings, texts, batch_size)

    admin = admin_client(settings)
    topic, live_topic = f"livectx.bench.texts.{tag}", f"livectx.bench.texts-live.{tag}"
    apply(admin, [TopicSpec(t, 3, {"retention.ms": "3600000"}) for t in (topic, live_topic)])
    index = f"bench_{tag}"
    stores: list[PgVectorStore] = []
    try:
        pipeline_per_s = _pipeline(settings, embedder, topic, index, docs, tag)
        steady = _steady(settings, embedder, live_topic, index, rate, STEADY_SECONDS * min(1.0, max(scale, 0.25)), tag)
        vectors = max(2_000, int(VECTORS * scale))
        query = _query(settings, f"bench_q_{tag}", vectors, embedder.dim, stores)
    finally:
        for future in admin.delete_topics([topic, live_topic]).values():
            future.result(30)
        for name in (index, *(s.index for s in stores)):
            store = PgVectorStore.from_settings(settings, index=name)
            store.drop()
            store.close()

    result = BenchResult("embeddings")
    result.figures = {
        "texts": count,
        "pipeline_texts_per_s": pipeline_per_s,
        "raw_texts_per_s": raw_per_s,
        "ratio": pipeline_per_s / raw_per_s,
        "rate": rate,
        "searchable_p50_ms": steady["p50"],
        "searchable_p99_ms": steady["p99"],
        "searchable_records": steady["records"],
        "query_p50_ms": query["p50"],
        "query_p99_ms": query["p99"],
        "recall_at_10": query["recall"],
        "vectors": vectors,
        "index_build_s": query["build_s"],
        **backends,
    }
    result.notes.append(
        f"model {embedder.name} on {embedder.device} ({embedder.backend}), batch {batch_size}, max wait "
        f"{settings.embedding.max_wait_ms} ms; pgvector HNSW m={settings.vector.hnsw_m} "
        f"ef_construction={settings.vector.hnsw_ef_construction} ef_search={settings.vector.ef_search}"
    )
    result.notes.append(embedding_backends.note())
    return result


def _produce(settings: Settings, topic: str, docs: list[Event]) -> None:
    p = producer(settings)
    for doc in docs:
        key, value, headers = serde.encode(doc)
        p.produce(topic, key=key, value=value, headers=headers)
    p.flush(60)


def _worker(settings: Settings, embedder: Embedder, topic: str, index: str, group: str) -> EmbeddingWorker:
    store = PgVectorStore.from_settings(settings, index=index)
    return EmbeddingWorker(
        settings,
        consumer_group=group,
        sources=[example.repo().text_sources[example.DOCUMENTS]],
        topic_map={example.DOCUMENTS: topic},
        store=store,
        embedder=embedder,
    )


def _pipeline(settings: Settings, embedder: Embedder, topic: str, index: str, docs: list[Event], tag: str) -> float:
    _produce(settings, topic, docs)
    worker = _worker(settings, embedder, topic, index, f"livectx-bench-emb-{tag}")
    stats = worker.run(until_caught_up=True)
    if stats.embedded != len(docs):
        raise RuntimeError(f"pipeline embedded {stats.embedded} of {len(docs)} texts")
    # From the first record in to the last batch searchable: the consumer-group join before and the
    # caught-up probe after are start-up and shutdown, not pipeline throughput.
    first = stats.first_record or stats.started
    return stats.embedded / ((stats.last_write or time.monotonic()) - first)


def _steady(
    settings: Settings, embedder: Embedder, topic: str, index: str, rate: float, seconds: float, tag: str
) -> dict[str, float]:
    worker = _worker(settings, embedder, topic, index, f"livectx-bench-emb-live-{tag}")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    p = producer(settings, **{"linger.ms": 0})
    try:
        # Warm up the worker (group assignment, first fetch) and this producer (metadata, producer id):
        # a new client's first records wait ~0.5 s for those, which is start-up, not steady state.
        for doc in _texts(30, salt=10**9):
            key, value, headers = serde.encode(doc)
            p.produce(topic, key=key, value=value, headers=headers)
        p.flush(30)
        while len(worker.stats.searchable_ms) < 30 and thread.is_alive():
            time.sleep(0.05)
        worker.stats.searchable_ms.clear()
        docs = _texts(int(rate * seconds), salt=10**6)
        started = time.monotonic()
        for i, doc in enumerate(docs):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the producer at the target rate (not synchronisation)
            key, value, headers = serde.encode(doc)
            p.produce(topic, key=key, value=value, headers=headers)
            p.poll(0)
        p.flush(30)
        deadline = time.monotonic() + 60
        while len(worker.stats.searchable_ms) < len(docs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(60)
    samples = list(worker.stats.searchable_ms)
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99), "records": len(samples)}


def clustered_unit_vectors(
    count: int, dim: int, rng: np.random.Generator, topics: int = 500, subtopics: int = 20
) -> np.ndarray:
    """Vectors shaped like sentence embeddings: topics, subtopics inside each, texts around a subtopic.

    Unrelated pairs have cosine ~0, a text's nearest neighbours ~0.4-0.7 (same subtopic, then same
    topic), so the top-10 has near-ties as real text collections do. Uniform random vectors would make
    every neighbour equally far, and well-separated blobs would make HNSW recall trivially 1.0.
    """

    def around(centres: np.ndarray, n: int, spread: float) -> np.ndarray:
        points = centres[rng.integers(0, len(centres), size=n)]
        points = points + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim)).astype(np.float32)
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    topic_centres = rng.normal(size=(topics, dim)).astype(np.float32)  # random directions
    topic_centres /= np.linalg.norm(topic_centres, axis=1, keepdims=True)
    subtopic_centres = around(topic_centres, topics * subtopics, 1.0)
    return around(subtopic_centres, count, 0.8).astype(np.float32)


def _query(settings: Settings, index: str, count: int, dim: int, stores: list[PgVectorStore]) -> dict[str, float]:
    rng = np.random.default_rng(42)
    data = clustered_unit_vectors(count + QUERIES, dim, rng)
    corpus, queries = data[:count], data[count:]
    store = PgVectorStore.from_settings(settings, index=index)
    stores.append(store)
    store.ensure_index("synthetic-clustered", dim)
    started = time.perf_counter()
    copied: list[float] = []  # when the COPY had every row: the rest of bulk_load is the HNSW build

    def records() -> Iterator[VectorRecord]:
        for i, v in enumerate(corpus):
            yield VectorRecord(
                id=str(i), vector=v, text="", source="bench", tenant="t", category=None, event_ms=i,
                topic="bench", partition=0, offset=i,
            )  # fmt: skip
        copied.append(time.perf_counter())

    store.bulk_load(records())
    built = time.perf_counter()
    # The true top-10 by brute force; argpartition, not a full sort (recall compares sets; at 1M vectors
    # sorting every row of scores takes minutes).
    exact = np.argpartition(-(queries @ corpus.T), TOP_K, axis=1)[:, :TOP_K]
    for q in queries[:20]:  # warm the index pages
        store.search(q, TOP_K)
    latencies, recalls = [], []
    for q, truth in zip(queries, exact, strict=True):
        t0 = time.perf_counter()
        hits = store.search(q, TOP_K)
        latencies.append((time.perf_counter() - t0) * 1000)
        recalls.append(len({int(h.id) for h in hits} & set(truth.tolist())) / TOP_K)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "recall": float(np.mean(recalls)),
        "build_s": built - started,
        "copy_s": copied[0] - started,
        "index_s": built - copied[0],
    }
