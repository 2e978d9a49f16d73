"""kill -9 one broker of three mid-stream: the exactly-once feature worker and the embedding worker lose and
double nothing. One 3-node cluster (started through the stack's code) serves the module; Redis, Postgres and
the registry are the session's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from livectx import topics
from livectx.consuming import GroupLag
from livectx.kafka import admin_client
from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.redis_client import redis_client
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.watermark import IndexWatermark
from tests import example

from .chaos_helpers import BackgroundProducer, Cluster, three_brokers, wait_or_dump
from .engine_helpers import TXN_GROUPS, online_mismatches, scenario_transactions, start_worker, worker_command
from .kafka_helpers import create_topic
from .test_embedding_worker import document


@pytest.fixture(scope="module")
def cluster(settings: Settings, stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    with three_brokers(settings, tmp_path_factory.mktemp("cluster")) as running:
        changes = topics.apply(admin_client(running.client), topics.declared_topics(current_repo(running.client)))
        assert {c.action for c in changes} == {"create"}
        yield running


def _sum_end(settings: Settings, topic: str) -> int:
    return sum(end_offsets(settings, [topic]).values())


def test_feature_worker_survives_a_broker_kill_exactly(
    cluster: Cluster, feature_store, unique: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Payments produced before and after the kill; the exactly-once worker runs through it; the killed node
    (the leader of the source's partition 0) comes back. Online values equal the recomputation, the log
    holds each payment once, and the offline copy has each once."""
    settings = cluster.client
    topic = create_topic(settings, f"test.{unique}.txn", 3)
    dlq, late = create_topic(settings, f"test.{unique}.dlq"), create_topic(settings, f"test.{unique}.late")
    events = scenario_transactions(unique, 7000, seed=17)
    group, log = f"test-{unique}", tmp_path / "worker.log"
    command = [c for c in worker_command(group, topic, dlq, late) if c != "--until-caught-up"] + ["--max-batch", "200"]
    source = BackgroundProducer(settings, topic, events, first=len(events) // 2)
    source.wait_first()
    worker = start_worker(command, log)
    try:
        lag = GroupLag(settings)  # one admin client and probe for the whole wait, closed on this thread
        try:
            wait_or_dump(lambda: _committed(lag, group) > 0, 120, log, "the worker committed nothing")
        finally:
            lag.close()
        victim = cluster.leader(topic, 0)
        cluster.kill(victim)
        source.go()  # the second half meets the failover
        source.join()
        assert worker.poll() is None, f"the worker exited during the outage:\n{log.read_text()[-3000:]}"
        cluster.restart(victim, [topic])
        caught_up = wait_for_caught_up(settings, group, end_offsets(settings, [topic]), timeout_s=150)
        assert caught_up, log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert _sum_end(settings, topic) == len(events)  # the idempotent producer wrote no duplicate
    assert online_mismatches(feature_store, TXN_GROUPS, events) == []
    users = sorted({e.user_id for e in events})
    for g in TXN_GROUPS:
        rows = pq.read_table(settings.offline_dir / g.name, filters=[("user_id", "in", users)])
        keys = list(
            zip(rows.column("source_partition").to_pylist(), rows.column("source_offset").to_pylist(), strict=True)
        )
        assert len(keys) == len(events) and len(set(keys)) == len(events), g.name


def _committed(lag: GroupLag, group: str) -> int:
    try:
        return sum(committed for _, _, committed, _ in lag.rows(group))
    except Exception:  # the group has no offsets yet
        return 0


@pytest.fixture
def index(cluster: Cluster, unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    isolated = Settings()
    yield isolated
    store = PgVectorStore.from_settings(isolated)
    store.drop()
    store.close()


def test_embedding_worker_survives_a_broker_kill_exactly(
    index: Settings, cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    """Texts produced before and after the kill of the docs topic's partition-0 leader; the worker runs
    through it. Every text is in pgvector exactly once and the watermark covers every record."""
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
        victim = cluster.leader(topic, 0)
        cluster.kill(victim)
        source.go()
        source.join()
        cluster.restart(victim, [topic])
        wait_or_dump(lambda: searchable() >= len(docs) or worker.poll() is not None, 180, log, "not all searchable")
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert _sum_end(index, topic) == len(docs)
    store = PgVectorStore.from_settings(index)
    try:
        rows = store._run(lambda c: c.execute(f"SELECT id, text FROM {store.index}").fetchall())
    finally:
        store.close()
    assert len(rows) == len(docs)
    assert dict(rows) == {f"document:{d.doc_id}": f"{d.title}\n{d.text}" for d in docs}
    assert searchable() == len(docs)


def test_topics_are_replicated_three_times_with_min_isr_two(cluster: Cluster) -> None:
    """Also the offsets topic, which the workers above brought into being."""
    admin = admin_client(cluster.client)
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    for name in (topics.DECISIONS, topics.DEAD_LETTER, "__consumer_offsets"):
        assert all(len(p.replicas) == 3 for p in metadata.topics[name].partitions.values()), name
    configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topics.DECISIONS)])
    [entries] = [f.result(10) for f in configs.values()]
    assert entries["min.insync.replicas"].value == "2"
