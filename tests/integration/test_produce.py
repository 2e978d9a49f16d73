from __future__ import annotations

import itertools
from datetime import UTC, datetime

from livectx import serde
from livectx.produce import produce_scenario
from livectx.settings import Settings
from tests.example import LOGINS, TRANSACTIONS, get_scenario

from .kafka_helpers import create_topic, read_all

START = datetime(2026, 3, 10, tzinfo=UTC)


def test_produced_records_are_the_scenarios_events_keyed_by_entity(
    settings: Settings,
    stack,  # type: ignore[no-untyped-def]
    unique: str,
) -> None:
    topic_map = {
        TRANSACTIONS: create_topic(settings, f"test.{unique}.txn", 3),
        LOGINS: create_topic(settings, f"test.{unique}.logins", 3),
    }
    result = produce_scenario(settings, "fraud", count=3000, seed=11, start=START, topic_map=topic_map)
    assert result.count == 3000 and sum(result.per_topic.values()) == 3000

    expected = [
        (topic_map[t], *serde.encode(e)[:2]) for t, e in itertools.islice(get_scenario("fraud")(11, START, 200.0), 3000)
    ]
    got = []
    for source, target in topic_map.items():
        records = read_all(settings, target, expected=result.per_topic[target])
        assert len(records) == result.per_topic[target], source
        got.extend((target, m.key(), m.value()) for m in records)
        for m in records:  # per-entity order: one user's events sit in one partition, in event-time order
            assert dict(m.headers())[serde.SCHEMA_HEADER] in {b"transaction.v1", b"login.v1"}
    assert sorted(got) == sorted(expected)
    by_key: dict[bytes, set[int]] = {}
    for target in topic_map.values():
        for m in read_all(settings, target, expected=result.per_topic[target]):
            by_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_key.values())
