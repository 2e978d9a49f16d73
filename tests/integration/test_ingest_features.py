"""The first end-to-end slice against the real broker, Redis and Feast.

Covers: poison records land in the dead-letter topic with their reason and source position while every
valid record around them is reflected in the online store (read back through Feast), and offsets are
committed only after the online write succeeded.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import TopicPartition
from livectx_ingest import dead_letter
from livectx_ingest.batch_worker import BatchWorker
from livectx_ingest.dead_letter import DeadLetterPublisher
from livectx_ingest.features_worker import build_features_worker
from livectx_ingest.user_totals import FEATURE_VIEW, FEATURES

from livectx import serde
from livectx.errors import LivectxError
from livectx.events import Transaction
from livectx.kafka import consumer, producer
from livectx.settings import Settings

from .kafka_helpers import create_topic, read_all

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
POISON = [
    (b"{this is not json", "not JSON"),
    (
        b'{"event_time": "2026-03-10T09:00:00Z", "txn_id": "x", "user_id": "u", "card_id": "c", '
        b'"merchant_id": "m", "amount": "lots", "currency": "EUR", "ip": "1.1.1.1", "country": "DE"}',
        "amount: Input should be a valid number",
    ),
    (
        b'{"event_time": "2026-03-10T09:00:00Z", "txn_id": "y", "card_id": "c", "merchant_id": "m", '
        b'"amount": 1.0, "currency": "EUR", "ip": "1.1.1.1", "country": "DE"}',
        "user_id: Field required",
    ),
]


def _transactions(prefix: str, count: int, seed: int) -> list[Transaction]:
    rng = random.Random(seed)
    return [
        Transaction(
            event_time=T0 + timedelta(milliseconds=137 * n),
            txn_id=f"{prefix}-t{n}",
            user_id=f"{prefix}-u{rng.randint(0, 24)}",
            card_id="c1",
            merchant_id=f"m{rng.randint(0, 9)}",
            amount=round(rng.uniform(1, 500), 2),
            currency="EUR",
            ip="10.0.0.1",
            country="DE",
        )
        for n in range(count)
    ]


def test_poison_records_go_to_dead_letter_and_valid_ones_reach_feast(
    settings: Settings,
    feature_store,
    unique: str,  # type: ignore[no-untyped-def]
) -> None:
    topic = create_topic(settings, f"test.{unique}.transactions", partitions=3)
    dlq = create_topic(settings, f"test.{unique}.dlq")
    txns = _transactions(unique, 600, seed=1)
    p = producer(settings)
    poison_at = {100: POISON[0], 300: POISON[1], 450: POISON[2]}
    for n, txn in enumerate(txns):
        if n in poison_at:
            p.produce(topic, key=txn.user_id.encode(), value=poison_at[n][0])
        key, value, headers = serde.encode(txn)
        p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0

    worker = build_features_worker(
        settings, topic=topic, group_id=f"test-{unique}", dead_letter_topic=dlq, batch_size=97
    )
    stats = worker.run(until_caught_up=True, max_seconds=120)
    assert (stats.consumed, stats.processed, stats.dead_lettered) == (603, 600, 3)

    letters = read_all(settings, dlq, expected=3)
    assert len(letters) == 3
    reasons = sorted(dict(m.headers())[dead_letter.REASON].decode() for m in letters)
    for value, reason in POISON:
        assert any(reason in r for r in reasons), (reason, reasons)
        assert any(m.value() == value for m in letters)
    for m in letters:
        headers = dict(m.headers())
        assert headers[dead_letter.SOURCE_TOPIC].decode() == topic
        assert int(headers[dead_letter.SOURCE_OFFSET]) >= 0

    # Batch recomputation over the same valid events must equal what Feast serves, for every user.
    expected: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    for t in txns:
        count, amount = expected[t.user_id]
        expected[t.user_id] = (count + 1, amount + t.amount)
    users = sorted(expected)
    online = feature_store.get_online_features(
        features=[f"{FEATURE_VIEW}:{f}" for f in FEATURES], entity_rows=[{"user_id": u} for u in users]
    ).to_dict()
    for user, count, amount in zip(users, online["txn_count_total"], online["txn_amount_total"], strict=True):
        assert count == expected[user][0], user
        assert amount == pytest.approx(expected[user][1], abs=0.01), user


def test_offsets_are_committed_only_after_the_online_write_succeeded(
    settings: Settings,
    stack,  # type: ignore[no-untyped-def]
    unique: str,
) -> None:
    topic = create_topic(settings, f"test.{unique}.in")
    dlq = create_topic(settings, f"test.{unique}.dlq")
    p = producer(settings)
    for txn in _transactions(unique, 50, seed=2):
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
    committed = probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    probe.close()
    assert committed < 0  # nothing committed: the failed batch will be re-delivered

    seen: list[str] = []
    stats = make_worker(lambda batch: seen.extend(e.txn_id for _, e in batch)).run(until_caught_up=True, max_seconds=60)
    assert stats.processed == 50 and len(set(seen)) == 50
    probe = consumer(settings, group)
    assert probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 50
    probe.close()
