"""The async enrichment operator: concurrent lookups, bounded in flight, ordered output, timeouts to a
fallback topic (a stalled lookup costs a fallback, never a stalled stream). Lookups are real pgvector
searches; every 10th event's lookup is made to hang, standing in for a vector store that stopped answering.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from livectx_agents.enrichment import FALLBACK_REASON, SOURCE_HEADER, AsyncEnricher

from livectx.kafka import producer
from livectx.settings import Settings
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorRecord

from .kafka_helpers import create_topic, read_all


def test_slow_lookups_fall_back_and_the_rest_come_out_enriched_in_order(settings: Settings, stack, unique: str) -> None:  # type: ignore[no-untyped-def]
    source = create_topic(settings, f"test.{unique}.in", 2)
    output = create_topic(settings, f"test.{unique}.enriched", 2)
    fallback = create_topic(settings, f"test.{unique}.fallback", 1)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = PgVectorStore.from_settings(settings, index=f"test_enrich_{uuid.uuid4().hex[:8]}")
    store.ensure_index("synthetic", 384)
    store.upsert([
        VectorRecord(id=f"doc{i}", vector=v, text=f"doc {i}", source="document", tenant="t", category=None,
                     event_ms=i, topic="t", partition=0, offset=i)
        for i, v in enumerate(vectors)
    ])  # fmt: skip
    p = producer(settings)
    for i in range(200):
        p.produce(source, key=str(i).encode(), value=json.dumps({"n": i, "doc": i % 50}).encode())
    assert p.flush(30) == 0

    pool = ThreadPoolExecutor(max_workers=8)
    hang = asyncio.Event()  # never set: the hanging lookups wait on it until their timeout cancels them

    async def lookup(message):  # type: ignore[no-untyped-def]
        event = json.loads(message.value())
        if event["n"] % 10 == 0:
            await hang.wait()
        hits = await asyncio.get_running_loop().run_in_executor(pool, store.search, vectors[event["doc"]], 3)
        return {"similar": [h.id for h in hits]}

    enricher = AsyncEnricher(
        settings, lookup, source_topic=source, output_topic=output, fallback_topic=fallback,
        consumer_group=f"test-{unique}", max_in_flight=16, timeout_s=1.0, ordered=True,
    )  # fmt: skip
    try:
        stats = asyncio.run(enricher.run(until_caught_up=True))
    finally:
        pool.shutdown()
        store.drop()
        store.close()
    assert (stats.consumed, stats.enriched, stats.fallbacks) == (200, 180, 20)
    assert stats.reasons == {"timeout": 20} and 1 < stats.max_in_flight_seen <= 16

    enriched = read_all(settings, output, expected=180)
    assert len(enriched) == 180
    by_partition: dict[int, list[int]] = defaultdict(list)
    for m in enriched:
        body = json.loads(m.value())
        assert body["n"] % 10 != 0 and body["enrichment"]["similar"][0] == f"doc{body['doc']}"
        by_partition[m.partition()].append(int(dict(m.headers())[SOURCE_HEADER].decode().rsplit("-", 1)[1]))
    assert all(offsets == sorted(offsets) for offsets in by_partition.values())  # input order kept
    fell_back = read_all(settings, fallback, expected=20)
    assert sorted(json.loads(m.value())["n"] for m in fell_back) == list(range(0, 200, 10))
    assert {dict(m.headers())[FALLBACK_REASON] for m in fell_back} == {b"timeout"}
