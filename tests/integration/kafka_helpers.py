"""Small helpers for integration tests: unique topics and reading a topic to its end."""

from __future__ import annotations

import uuid

from confluent_kafka import Message

from livectx.kafka import admin_client, consumer
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply


def create_topic(settings: Settings, name: str, partitions: int = 1) -> str:
    apply(admin_client(settings), [TopicSpec(name, partitions, {"retention.ms": "3600000"})])
    return name


def read_all(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> list[Message]:
    """Every record of ``topic`` (at least ``expected``), read with a throwaway consumer group."""
    import time

    c = consumer(settings, f"test-reader-{uuid.uuid4().hex[:8]}")
    c.subscribe([topic])
    records: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(m for m in c.consume(1000, 0.5) if m.error() is None)
    finally:
        c.close()
    return records
