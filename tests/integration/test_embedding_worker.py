"""The embedding worker against the real broker, Postgres + pgvector, Redis and the real MiniLM model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from livectx_ingest.embeddings.worker import EmbeddingWorker

from livectx import dead_letter, serde
from livectx.errors import VectorStoreError, WatermarkTimeout
from livectx.kafka import producer
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.stack.process import wait_until
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.watermark import IndexWatermark
from tests import example
from tests.example import TEXT_SOURCES, Document

from .kafka_helpers import create_topic, read_all

DOCS = TEXT_SOURCES[example.DOCUMENTS]
START = datetime(2026, 11, 1, tzinfo=UTC)
NOUNS = ("router", "invoice", "parcel", "password", "subscription", "refund", "laptop", "account", "coupon", "app")
VERBS = ("reset", "cancel", "track", "update", "return", "activate", "replace", "verify", "export", "renew")


def document(i: int, version: int = 1) -> Document:
    """Distinct, realistic texts: a unique serial keeps even near-identical templates apart."""
    noun, verb = NOUNS[i % 10], VERBS[(i // 10) % 10]
    text = f"How to {verb} the {noun} for customer case {i * 7919 % 100_003}, revision {version}."
    return Document(
        event_time=START + timedelta(seconds=i), doc_id=f"d{i:05d}", title=f"{verb} {noun}", text=text,
        category=noun, tenant="acme" if i % 2 else "globex",
    )  # fmt: skip


def produce(settings: Settings, topic: str, records: Sequence[Document | tuple[bytes | None, bytes | None]]) -> list:
    """Produce in order; returns each record's (partition, offset)."""
    p = producer(settings)
    positions: list = [None] * len(records)

    def delivered(i: int) -> Callable[[object, object], None]:
        def callback(err: object, msg) -> None:  # type: ignore[no-untyped-def]
            assert err is None, err
            positions[i] = (msg.partition(), msg.offset())

        return callback

    for i, record in enumerate(records):
        if isinstance(record, Document):
            key, value, headers = serde.encode(record)
            p.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered(i))
        else:
            p.produce(topic, key=record[0], value=record[1], on_delivery=delivered(i))
    assert p.flush(60) == 0
    return positions


@pytest.fixture
def memory(settings: Settings, stack, unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    """Settings with a vector index of its own (dropped afterwards)."""
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    isolated = Settings()
    yield isolated
    store = PgVectorStore.from_settings(isolated)
    store.drop()
    store.close()


def worker(settings: Settings, topic: str, group: str, embedder, **options) -> EmbeddingWorker:  # type: ignore[no-untyped-def]
    return EmbeddingWorker(
        settings, consumer_group=group, sources=[DOCS], topic_map={example.DOCUMENTS: topic}, embedder=embedder,
        **options,
    )  # fmt: skip


def stored_texts(settings: Settings) -> dict[str, str]:
    store = PgVectorStore.from_settings(settings)
    try:
        return dict(store._run(lambda c: c.execute(f"SELECT id, text FROM {store.index}").fetchall()))
    finally:
        store.close()


def top_hit(settings: Settings, embedder, text: str):  # type: ignore[no-untyped-def]
    store = PgVectorStore.from_settings(settings)
    try:
        return store.search(embedder.embed([text])[0], top_k=1)[0]
    finally:
        store.close()


def test_exact_text_search_updates_deletes_and_replay(memory: Settings, embedder, unique: str) -> None:  # type: ignore[no-untyped-def]
    topic = create_topic(memory, f"test.{unique}.docs", partitions=3)
    docs = [document(i) for i in range(1000)]
    produce(memory, topic, docs)
    stats = worker(memory, topic, f"test-{unique}-a", embedder).run(until_caught_up=True)
    assert (stats.consumed, stats.embedded, stats.dead_lettered) == (1000, 1000, 0)
    texts = stored_texts(memory)
    assert len(texts) == 1000
    assert all(texts[f"document:{d.doc_id}"] == f"{d.title}\n{d.text}" for d in docs)
    for d in docs[::97]:  # the exact text of an event finds that event first
        assert top_hit(memory, embedder, f"{d.title}\n{d.text}").id == f"document:{d.doc_id}"

    # A replay of the same events by a new group leaves exactly 1,000 vectors.
    worker(memory, topic, f"test-{unique}-replay", embedder).run(until_caught_up=True)
    assert len(stored_texts(memory)) == 1000

    # Updates replace, deletes (op=delete and Kafka tombstones) remove.
    updates = [document(i, version=2).model_copy(update={"text": f"Totally new answer number {i}."}) for i in range(50)]
    deletes = [docs[i].model_copy(update={"op": "delete"}) for i in range(950, 980)]
    tombstones = [(docs[i].doc_id.encode(), None) for i in range(980, 1000)]
    produce(memory, topic, [*updates, *deletes, *tombstones])
    worker(memory, topic, f"test-{unique}-a", embedder).run(until_caught_up=True)
    texts = stored_texts(memory)
    assert len(texts) == 950
    assert not {f"document:d{i:05d}" for i in range(950, 1000)} & texts.keys()
    assert all(
        texts[f"document:{u.doc_id}"] == f"{u.title}\nTotally new answer number {i}." for i, u in enumerate(updates)
    )
    assert top_hit(memory, embedder, f"{updates[7].title}\n{updates[7].text}").id == "document:d00007"


def test_bad_records_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    memory: Settings, embedder, unique: str
) -> None:  # type: ignore[no-untyped-def]
    topic = create_topic(memory, f"test.{unique}.docs", partitions=1)
    dlq = create_topic(memory, f"test.{unique}.dlq")
    good = [document(i) for i in range(20)]
    bad = [
        (b"d-bad1", b'{"doc_id": "\xff"}'),
        (b"d-bad2", serde.encode(good[0].model_copy(update={"doc_id": "d-bad2", "title": "", "text": " "}))[1]),
        (b"d-bad3", serde.encode(good[0].model_copy(update={"doc_id": "d-bad3", "text": "x" * 9000}))[1]),
        (b"d-bad4", serde.encode(good[0].model_copy(update={"doc_id": ""}))[1]),
        (b"d-bad5", b"not json at all"),
    ]
    produce(memory, topic, [*good[:10], *bad, *good[10:]])
    stats = worker(memory, topic, f"test-{unique}", embedder, dead_letter_topic=dlq).run(until_caught_up=True)
    assert (stats.embedded, stats.dead_lettered) == (20, 5)
    assert len(stored_texts(memory)) == 20
    reasons = {
        m.key(): dict(m.headers())[dead_letter.REASON].decode() for m in read_all(memory, dlq, expected=5)
    }  # fmt: skip
    assert reasons.keys() == {b"d-bad1", b"d-bad2", b"d-bad3", b"d-bad4", b"d-bad5"}
    assert reasons[b"d-bad1"].startswith("invalid UTF-8")
    assert reasons[b"d-bad2"] == "empty text: nothing to embed"
    assert reasons[b"d-bad3"].startswith("oversized text")
    assert reasons[b"d-bad4"] == "missing id: doc_id is empty"
    assert reasons[b"d-bad5"].startswith("not JSON")


def test_watermark_read_your_writes_and_a_clean_timeout(memory: Settings, embedder, unique: str) -> None:  # type: ignore[no-untyped-def]
    topic = create_topic(memory, f"test.{unique}.docs", partitions=2)
    running = worker(memory, topic, f"test-{unique}", embedder, max_wait_ms=20)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    watermark = IndexWatermark(redis_client(memory), memory.vector.index)
    mine = document(4242).model_copy(update={"text": "Read your own write: the blue kettle manual."})
    [(partition, offset)] = produce(memory, topic, [mine])
    waited = watermark.wait_for(topic, partition, offset, timeout_s=60)
    assert waited < 60 and watermark.caught_up(topic, partition, offset)
    assert top_hit(memory, embedder, f"{mine.title}\n{mine.text}").id == "document:d04242"

    running.stop()
    thread.join(60)
    assert not thread.is_alive()
    [(partition, offset)] = produce(memory, topic, [document(4243)])
    assert not watermark.caught_up(topic, partition, offset)
    with pytest.raises(WatermarkTimeout, match=rf"has not reached {topic}\[{partition}\]@{offset} after 0.5s"):
        watermark.wait_for(topic, partition, offset, timeout_s=0.5)


def test_kill_9_mid_stream_loses_and_duplicates_nothing(memory: Settings, unique: str, tmp_path: Path) -> None:
    topic = create_topic(memory, f"test.{unique}.docs", partitions=3)
    docs = [document(i) for i in range(1000)]
    produce(memory, topic, docs)
    command = [
        sys.executable, "-m", "livectx", "ingest", "run", "embeddings", "--topic", example.DOCUMENTS,
        "--source-topic", f"{example.DOCUMENTS}={topic}", "--group", f"test-{unique}", "--batch-size", "32",
    ]  # fmt: skip
    env = {**os.environ, "LIVECTX_VECTOR_INDEX": memory.vector.index}
    watermark = IndexWatermark(redis_client(memory), memory.vector.index)
    log = tmp_path / "worker.log"
    for kill_after in (150, 450):  # searchable records before each kill -9
        proc = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        try:
            progressed = wait_until(
                lambda n=kill_after, p=proc: sum(watermark.positions().values()) >= n or p.poll() is not None, 120
            )
            assert progressed and proc.poll() is None, log.read_text()[-3000:]
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert sum(watermark.positions().values()) < 1000  # the kills really were mid-stream
    done = subprocess.run([*command, "--until-caught-up"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    assert done.returncode == 0, log.read_text()[-3000:]
    texts = stored_texts(memory)
    assert texts == {f"document:{d.doc_id}": f"{d.title}\n{d.text}" for d in docs}
    assert sum(watermark.positions().values()) == 1000


class GatedStore:
    """Wraps the real pgvector store: fails its first ``failures`` writes (an outage), and holds writes
    while ``gate`` is closed (a store that has slowed to a halt)."""

    def __init__(self, inner: PgVectorStore, failures: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.failures = failures
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def upsert(self, records) -> None:  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            raise VectorStoreError("simulated outage")
        self.waiting.set()
        assert self.gate.wait(120), "test never opened the gate"
        self.inner.upsert(records)


def test_backpressure_pauses_consumption_and_an_outage_only_delays(memory: Settings, embedder, unique: str) -> None:  # type: ignore[no-untyped-def]
    topic = create_topic(memory, f"test.{unique}.docs", partitions=3)
    produce(memory, topic, [document(i) for i in range(2000)])
    store = GatedStore(PgVectorStore.from_settings(memory), failures=3)
    running = worker(memory, topic, f"test-{unique}", embedder, store=store, batch_size=16, max_pending=2)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(running.run(until_caught_up=True)), daemon=True)
    thread.start()
    try:
        # The store is stuck: the worker fills its two pending slots, then pauses instead of buffering.
        assert wait_until(lambda: running.stats.pauses >= 1, 120)
        consumed_when_paused = running.stats.consumed
        assert store.waiting.wait(60)
        # Bounded: one batch being written, two waiting, one open, plus what one fetch returned.
        assert consumed_when_paused <= 16 * 5 + 16, consumed_when_paused
        assert running.stats.consumed <= 16 * 5 + 16
    finally:
        store.gate.set()
    thread.join(300)
    assert not thread.is_alive()
    stats = result[0]
    assert stats.store_retries == 3 and stats.embedded == 2000
    assert len(stored_texts(memory)) == 2000
