"""``kafka``: raw produce and consume throughput with confluent-kafka on the configured broker.

This is the baseline every later pipeline figure is a ratio of: what the broker and client alone do on
this machine, with the producer settings livectx's workers use (idempotent, acks=all, lz4, linger 5 ms).
"""

from __future__ import annotations

import os
import time
import uuid

from livectx.kafka import admin_client, consumer, producer, require_reachable
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply
from livectx_benchmarks.result import BenchResult

MESSAGES = 200_000
VALUE_BYTES = 200


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    require_reachable(settings)
    count = max(1000, int(MESSAGES * scale))
    topic = f"livectx.bench.kafka.{uuid.uuid4().hex[:8]}"
    admin = admin_client(settings)
    apply(admin, [TopicSpec(topic, 3, {"retention.ms": "600000"})])
    try:
        produce_s = _produce(settings, topic, count)
        consume_s = _consume(settings, topic, count)
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(30)
    result = BenchResult("kafka")
    result.figures = {
        "messages": count,
        "value_bytes": VALUE_BYTES,
        "produce_msgs_per_s": count / produce_s,
        "consume_msgs_per_s": count / consume_s,
        "produce_mb_per_s": count * VALUE_BYTES / produce_s / 1e6,
        "consume_mb_per_s": count * VALUE_BYTES / consume_s / 1e6,
    }
    result.notes.append(f"{count:,} messages of {VALUE_BYTES} bytes, 3 partitions, one producer, one consumer")
    return result


def _produce(settings: Settings, topic: str, count: int) -> float:
    p = producer(settings)
    payload = os.urandom(VALUE_BYTES // 2).hex().encode()
    began = time.perf_counter()
    for n in range(count):
        key = str(n % 1000).encode()
        while True:
            try:
                p.produce(topic, value=payload, key=key)
                break
            except BufferError:
                p.poll(0.05)
        if n % 10_000 == 0:
            p.poll(0)
    remaining = p.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} benchmark messages were not delivered")
    return time.perf_counter() - began


def _consume(settings: Settings, topic: str, count: int) -> float:
    """Seconds to consume ``count`` records, from the fetch that returned the first one (group join and
    assignment excluded) to the last one."""
    c = consumer(settings, f"livectx-bench-{uuid.uuid4().hex[:8]}", **{"fetch.min.bytes": 1})
    c.subscribe([topic])
    seen = 0
    began = None
    deadline = time.monotonic() + 120
    try:
        while seen < count and time.monotonic() < deadline:
            asked = time.perf_counter()
            batch = c.consume(min(10_000, count - seen), 1.0)  # never wait out the timeout at the end
            if batch and began is None:
                began = asked
            seen += sum(1 for m in batch if m.error() is None)
    finally:
        c.close()
    if seen < count or began is None:
        raise RuntimeError(f"consumed only {seen} of {count} benchmark messages")
    return time.perf_counter() - began
