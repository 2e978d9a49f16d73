"""A Postgres restart mid-stream: the embedding worker holds its batch, retries with a bounded backoff, logs
one line for the outage, and ends with every text in pgvector exactly once. (The registry's outage, for both
workers, is in test_wire_format.py; a broker's, in test_broker_chaos.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livectx.offsets import end_offsets
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import wait_until
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.watermark import IndexWatermark
from tests import example

from .chaos_helpers import BackgroundProducer, wait_or_dump
from .kafka_helpers import create_topic
from .test_embedding_worker import document


@pytest.fixture
def index(stack: Stack, unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    isolated = Settings()
    yield isolated
    store = PgVectorStore.from_settings(isolated)
    store.drop()
    store.close()


def test_embedding_worker_rides_out_a_postgres_restart(
    index: Settings, stack: Stack, unique: str, tmp_path: Path
) -> None:
    postgres = stack.service("postgres")
    if postgres.process.pid() is None:
        pytest.skip("Postgres was not started by this stack: not restarting someone else's server")
    topic = create_topic(index, f"test.{unique}.docs", partitions=3)
    docs = [document(i) for i in range(600)]
    command = [
        sys.executable, "-m", "livectx", "ingest", "run", "embeddings", "--topic", example.DOCUMENTS,
        "--source-topic", f"{example.DOCUMENTS}={topic}", "--group", f"test-{unique}", "--batch-size", "32",
    ]  # fmt: skip
    watermark = IndexWatermark(redis_client(index), index.vector.index)
    searchable = lambda: sum(watermark.positions().values())  # noqa: E731
    source = BackgroundProducer(index, topic, docs, first=300)
    source.wait_first()
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(command, env=dict(os.environ), stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        wait_or_dump(lambda: searchable() > 0 or worker.poll() is not None, 120, log, "nothing became searchable")
        # Fast shutdown (SIGINT): open sessions are cut, as in a restart or a failover.
        postgres.process.signal(signal.SIGINT)
        assert wait_until(lambda: postgres.process.pid() is None, 30), "Postgres did not stop"
        source.go()  # texts keep arriving while the store is down
        wait_or_dump(lambda: "vector store unavailable" in log.read_text(), 60, log, "the worker saw no outage")
        stack.up(["postgres"])
        source.join()
        wait_or_dump(lambda: searchable() >= len(docs) or worker.poll() is not None, 180, log, "not all searchable")
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        if postgres.process.pid() is None:
            stack.up(["postgres"])
    assert worker.wait(60) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert text.count("vector store unavailable") == 1, text[-3000:]  # one line for the outage, not per retry
    assert text.count("vector store answers again") == 1 and "Traceback" not in text, text[-3000:]
    assert sum(end_offsets(index, [topic]).values()) == len(docs)
    store = PgVectorStore.from_settings(index)
    try:
        rows = store._run(lambda c: c.execute(f"SELECT id, text FROM {store.index}").fetchall())
    finally:
        store.close()
    assert len(rows) == len(docs)
    assert dict(rows) == {f"document:{d.doc_id}": f"{d.title}\n{d.text}" for d in docs}
    assert searchable() == len(docs)
