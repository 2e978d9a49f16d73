"""The generic batch worker (used by record-at-a-time workers) commits only after its side effect."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import TopicPartition
from livectx_ingest.batch_worker import BatchWorker

from livectx import dead_letter, serde
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import LivectxError
from livectx.kafka import consumer, producer
from livectx.settings import Settings
from tests.example import Transaction

from .kafka_helpers import create_topic, read_all

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _transactions(prefix: str, count: int) -> list[Transaction]:
    rng = random.Random(2)
    return [
        Transaction(
            event_time=T0 + timedelta(milliseconds=137 * n),
            txn_id=f"{prefix}-t{n}",
            user_id=f"{prefix}-u{rng.randint(0, 24)}",
            card_id="c1",
            merchant_id="m1",
            amount=round(rng.uniform(1, 500), 2),
            currency="EUR",
            ip="10.0.0.1",
            country="DE",
        )
        for n in range(count)
    ]


def test_offsets_are_committed_only_after_the_side_effect_succeeded(
    settings: Settings,
    stack,  # type: ignore[no-untyped-def]
    unique: str,
) -> None:
    topic = create_topic(settings, f"test.{unique}.in")
    dlq = create_topic(settings, f"test.{unique}.dlq")
    p = producer(settings)
    for n, txn in enumerate(_transactions(unique, 50)):
        if n == 20:
            p.produce(topic, key=b"x", value=b"{broken")
        key, value, headers = serde.encode(txn)
        p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0
    group = f"test-{unique}"

    def failing_write(_batch) -> None:  # type: ignore[no-untyped-def]
        raise LivectxError("online store down")

    def make_worker(process) -> BatchWorker:  # type: ignore[no-untyped-def]
        return BatchWorker(
            consumer(settings, group),
            [topic],
            Transaction,
            process,
            DeadLetterPublisher(producer(settings), dlq, "test"),
        )

    with pytest.raises(LivectxError, match="online store down"):
        make_worker(failing_write).run(until_caught_up=True, max_seconds=60)
    probe = consumer(settings, group)
    assert probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 0  # will be re-delivered
    probe.close()

    seen: list[str] = []
    stats = make_worker(lambda batch: seen.extend(e.txn_id for _, e in batch)).run(until_caught_up=True, max_seconds=60)
    assert stats.processed == 50 and len(set(seen)) == 50 and stats.dead_lettered == 1
    probe = consumer(settings, group)
    assert probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 51
    probe.close()
    letters = read_all(settings, dlq, expected=1)
    # At-least-once: the failed first attempt may also have published its dead letter.
    assert letters and all(dict(m.headers())[dead_letter.REASON].decode().startswith("not JSON") for m in letters)
