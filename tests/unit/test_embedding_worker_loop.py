"""The embedding worker's whole consumer loop and its three threads, on fakes: a scripted consumer (records,
then a revoke from inside ``poll`` as librdkafka does), an in-memory store and embedder, a watermark that
only remembers. No Kafka, Redis or Postgres."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from confluent_kafka import TopicPartition
from livectx_ingest.embeddings import worker as worker_module
from livectx_ingest.embeddings.worker import EmbeddingWorker

from livectx.settings import Settings
from tests import example
from tests.example import TEXT_SOURCES, Document
from tests.unit.engine_fakes import Record, records

DOCS = TEXT_SOURCES[example.DOCUMENTS]
T = "test.docs"
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def docs(first: int, count: int) -> list[Any]:
    return [
        Document(
            event_time=START + timedelta(seconds=i),
            doc_id=f"d{i:05d}",
            title=f"title {i}",
            text=f"text {i}",
            category="c",
            tenant="acme",
        )
        for i in range(first, first + count)
    ]


class ScriptedConsumer:
    """Hands out ``fetched`` records in order (none from a paused partition). With ``revoke``, the first poll
    after the last record calls the worker's revoke callback and snapshots what was committed, stored and
    searchable when the callback returned: the moment the partitions are given up."""

    def __init__(self, fetched: Iterator[Record], store: FakeStore, watermark: FakeWatermark, *, revoke: bool) -> None:
        self._fetched = deque(fetched)
        self._store, self._watermark = store, watermark
        self._revoke_pending = revoke
        self._on_revoke: Callable[[Any, list[TopicPartition]], None] | None = None
        self.assigned = [TopicPartition(T, 0), TopicPartition(T, 1)]
        self.paused: set[int] = set()
        self.pause_calls = 0
        self.resume_calls = 0
        self.committed: dict[tuple[str, int], int] = {}
        self.at_revoke: dict[str, Any] | None = None
        self.closed = False

    def subscribe(self, topics: list[str], on_revoke: Callable[[Any, list[TopicPartition]], None]) -> None:
        assert topics == [T]
        self._on_revoke = on_revoke

    def _next(self) -> Record | None:
        if self._fetched and self._fetched[0].partition() not in self.paused:
            return self._fetched.popleft()
        return None

    def poll(self, timeout: float) -> Record | None:
        record = self._next()
        if record is None and not self._fetched and self._revoke_pending and self._on_revoke is not None:
            self._revoke_pending = False
            self._on_revoke(self, list(self.assigned))
            self.at_revoke = {
                "committed": dict(self.committed),
                "stored": set(self._store.vectors),
                "searchable": dict(self._watermark.positions),
            }
            self.assigned = []
        if record is None:
            time.sleep(timeout)
        return record

    def consume(self, num_messages: int, timeout: float) -> list[Record]:
        out = []
        while len(out) < num_messages and (record := self._next()) is not None:
            out.append(record)
        return out

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.pause_calls += 1
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resume_calls += 1
        self.paused -= {tp.partition for tp in partitions}

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        for tp in offsets:
            assert tp.offset >= self.committed.get((tp.topic, tp.partition), 0), "a commit went backwards"
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def get_watermark_offsets(self, partition: TopicPartition, cached: bool = False) -> tuple[int, int]:
        return 0, 1000

    def seek(self, partition: TopicPartition) -> None:
        raise AssertionError("no registry here: nothing is held")

    def close(self) -> None:
        self.closed = True


class FakeStore:
    name = "fake"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.vectors: dict[str, Any] = {}
        self.gate = gate or threading.Event()
        if gate is None:
            self.gate.set()
        self.waiting = threading.Event()

    def ensure_index(self, model: str, dim: int) -> None:
        pass

    def delete(self, ids: Sequence[str]) -> None:
        for id_ in ids:
            self.vectors.pop(id_, None)

    def upsert(self, records: Sequence[Any]) -> None:
        self.waiting.set()
        assert self.gate.wait(30), "the test never opened the gate"
        self.vectors.update((r.id, r.vector) for r in records)

    def close(self) -> None:
        pass


class FakeEmbedder:
    name, dim = "fake-model", 3

    def load(self) -> None:
        pass

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.ones((len(texts), self.dim), dtype=np.float32)


class FakeWatermark:
    key = "fake:watermark"

    def __init__(self) -> None:
        self.positions: dict[tuple[str, int], int] = {}

    def advance(self, positions: dict[tuple[str, int], int]) -> None:
        self.positions.update(positions)

    def publish_status(self, lag_records: int | None, newest_event_ms: int | None, now_ms: int) -> None:
        pass


class FakeDeadLetters:
    def publish(self, message: Any, reason: str) -> None:
        raise AssertionError(f"unexpected dead letter: {reason}")

    def flush(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "require_reachable", lambda settings: None)
    monkeypatch.setattr(worker_module, "DRAIN_TIMEOUT_S", 5.0)  # a broken drain fails in seconds, not 30


def make_worker(
    fetched: list[Record], store: FakeStore, *, revoke: bool, **options: Any
) -> tuple[EmbeddingWorker, ScriptedConsumer]:
    watermark = FakeWatermark()
    consumer = ScriptedConsumer(iter(fetched), store, watermark, revoke=revoke)
    worker = EmbeddingWorker(
        Settings(), sources=[DOCS], topic_map={DOCS.topic: T}, store=store, embedder=FakeEmbedder(),  # type: ignore[arg-type]
        kafka_consumer=consumer, dead_letters=FakeDeadLetters(), watermark=watermark, schemas=object(),  # type: ignore[arg-type]
        **options,
    )  # fmt: skip
    return worker, consumer


def wait_until(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def run_in_thread(worker: EmbeddingWorker) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(worker.run(max_seconds=60))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_on_revoke_the_worker_embeds_writes_and_commits_what_it_consumed_before_giving_partitions_up() -> None:
    fetched = [*records(T, 0, docs(0, 6)), *records(T, 1, docs(6, 4))]
    store = FakeStore()
    # A batch that would close only after a minute: what was consumed is still open when the revoke comes.
    worker, consumer = make_worker(fetched, store, revoke=True, batch_size=100, max_wait_ms=60_000)
    thread, result = run_in_thread(worker)
    try:
        assert wait_until(lambda: consumer.at_revoke is not None), result
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive() and not isinstance(result[0], BaseException), result
    at_revoke = consumer.at_revoke
    assert at_revoke is not None
    assert at_revoke["committed"] == {(T, 0): 6, (T, 1): 4}  # the next offsets: all ten records committed
    assert at_revoke["stored"] == {f"document:d{i:05d}" for i in range(10)}
    assert at_revoke["searchable"] == {(T, 0): 6, (T, 1): 4}
    assert result[0].consumed == 10 and result[0].embedded == 10 and consumer.closed


def test_backpressure_pauses_the_partitions_while_the_store_is_stuck_and_resumes_after() -> None:
    fetched = [
        r
        for i in range(0, 200, 2)
        for r in (*records(T, 0, docs(i, 1), i // 2), *records(T, 1, docs(i + 1, 1), i // 2))
    ]
    gate = threading.Event()
    store = FakeStore(gate)
    worker, consumer = make_worker(fetched, store, revoke=False, batch_size=4, max_wait_ms=5, max_pending=1)
    thread, result = run_in_thread(worker)
    try:
        assert store.waiting.wait(20)
        assert wait_until(lambda: consumer.pause_calls == 1 and consumer.paused == {0, 1}), worker.stats
        assert worker.stats.pauses == 1
        consumed_when_paused = worker.stats.consumed
        time.sleep(0.3)
        # Bounded: one batch in the store, one waiting for it, one being embedded, one open (plus one fetch).
        assert worker.stats.consumed == consumed_when_paused <= 4 * 4 + 4
        gate.set()
        assert wait_until(lambda: consumer.resume_calls >= 1 and consumer.paused == set()), worker.stats
        assert wait_until(lambda: consumer.committed == {(T, 0): 100, (T, 1): 100})
    finally:
        gate.set()
        worker.stop()
        thread.join(30)
    assert not thread.is_alive() and not isinstance(result[0], BaseException), result
    assert len(store.vectors) == 200 and result[0].embedded == 200
