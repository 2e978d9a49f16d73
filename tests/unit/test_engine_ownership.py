"""The feature engine's real loop with fakes (a scripted consumer, an in-memory checkpoint store): partitions
handed over in a rebalance keep their state exactly, a fenced worker drops its uncommitted work and takes
the store's, and a store that went back in time is claimed again and re-read from its offsets."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from typing import Any

from livectx_ingest.streaming.engine import FeatureEngine

from livectx.features.incremental import GroupState
from livectx.features.spec import FeatureGroup
from tests.example import FEATURE_GROUPS, Transaction

from .engine_fakes import MemoryCheckpoints, ScriptedConsumer, SideOutputs, records

GROUP: FeatureGroup = next(g for g in FEATURE_GROUPS if g.name == "user_txn_5m")
TOPIC = GROUP.source_topic
START = datetime(2026, 3, 10, tzinfo=UTC)


class NoRedis:
    def register_script(self, _script: str) -> None:
        return None


def _payments(user: str, n: int) -> list[Transaction]:
    return [_payment(user, i) for i in range(n)]


def _payment(user: str, i: int) -> Transaction:
    return Transaction(
        event_time=START + timedelta(seconds=i), txn_id=f"{user}-{i}", user_id=user,
        card_id="c", merchant_id="m", amount=1.0 + i, currency="EUR", ip="10.0.0.1", country="DE",
    )  # fmt: skip


def _run(
    store: MemoryCheckpoints, script: list[tuple[str, Any]], interval_s: float = 0.0, **options: Any
) -> ScriptedConsumer:
    """Run the engine over ``script`` with ``store``; ``options``: more of its keyword arguments."""
    consumer = ScriptedConsumer(script)
    side = SideOutputs()
    engine = FeatureEngine(
        consumer=consumer, redis_client=NoRedis(), consumer_group="g", groups=[GROUP], topic_map={},
        dead_letters=side, late=side, offline=None, commit_interval_s=interval_s, columnar=False,  # type: ignore[arg-type]
        checkpoints=store, **options,
    )  # fmt: skip
    consumer.engine = engine
    try:
        engine.run()
    finally:
        gc.unfreeze()
    return consumer


def _stored_rows(store: MemoryCheckpoints) -> dict[str, dict[str, Any]]:
    """Every entity's online values, from the store's checkpointed state."""
    state = GroupState(GROUP)
    for entries in store.states.values():
        for key, raw in entries.items():
            state.load(key.partition("\x1f")[2], raw)
    return {entity: state.row(entity).values for entity in state.entities()}


def _expected(events: list[Transaction]) -> dict[str, dict[str, Any]]:
    state = GroupState(GROUP)
    for n, e in enumerate(events):
        state.apply(e.user_id, e.event_time_ms, n, tuple(getattr(e, c) for c in state.columns))
    return {entity: state.row(entity).values for entity in state.entities()}


def test_a_rebalance_hands_each_partition_s_state_to_the_next_owner_exactly() -> None:
    a, b = _payments("a", 6), _payments("b", 6)
    p0, p1 = records(TOPIC, 0, a), records(TOPIC, 1, b)
    store = MemoryCheckpoints()
    first = _run(store, [
        ("assign", [(TOPIC, 0), (TOPIC, 1)]), ("records", p0[:3] + p1[:2]), ("revoke", [(TOPIC, 0), (TOPIC, 1)]),
    ], interval_s=3600.0)  # fmt: skip
    # No checkpoint was due: the revoke itself committed what the worker had, before letting go.
    assert store.stored_offsets == {(TOPIC, 0): 3, (TOPIC, 1): 2} and store.commits == 1
    assert first.assigned == []
    second = _run(store, [("assign", [(TOPIC, 0), (TOPIC, 1)]), ("records", p0[3:] + p1[2:])])
    assert store.epochs == {(TOPIC, 0): 2, (TOPIC, 1): 2}
    assert store.stored_offsets == {(TOPIC, 0): 6, (TOPIC, 1): 6}
    assert _stored_rows(store) == _expected(a + b)
    assert second.kafka_commits[-1] == [(TOPIC, 0, 6), (TOPIC, 1, 6)]  # the mirror follows the store


def test_a_fenced_worker_drops_its_uncommitted_work_and_reloads_the_new_owner_s() -> None:
    a = _payments("a", 10)
    p0 = records(TOPIC, 0, a)
    store = MemoryCheckpoints()
    taken: dict[str, Any] = {}

    def another_worker_takes_over() -> None:
        # It claims the partition and commits its own progress (the first 5 events) before we commit again.
        other = MemoryCheckpoints(epochs=store.epochs, stored_offsets=store.stored_offsets, states=store.states)
        (epoch,) = other.claim([(TOPIC, 0)]).values()
        state = GroupState(GROUP)
        for n, e in enumerate(a[:5]):
            state.apply(e.user_id, e.event_time_ms, n, tuple(getattr(e, c) for c in state.columns))
        other.commit(
            {(TOPIC, 0): epoch},
            {(TOPIC, 0): 5},
            {(TOPIC, 0): 2},
            {(TOPIC, 0): {"user_txn_5m\x1fa": state.dump("a")}},
            None,
        )
        taken.update(store.states[(TOPIC, 0)])

    consumer = _run(store, [
        ("assign", [(TOPIC, 0)]), ("records", p0[:2]), ("do", another_worker_takes_over), ("records", p0[2:8]),
    ])  # fmt: skip
    assert store.states[(TOPIC, 0)] == taken and store.stored_offsets[(TOPIC, 0)] == 5  # never overwritten
    assert (TOPIC, 0, 5) in consumer.seeks  # it went back to where the new owner's state is


def test_a_store_that_came_back_empty_is_claimed_again_and_read_from_the_start() -> None:
    a, b = _payments("a", 4), _payments("b", 4)
    p0, p1 = records(TOPIC, 0, a), records(TOPIC, 1, b)
    store = MemoryCheckpoints()
    consumer = _run(store, [
        ("assign", [(TOPIC, 0), (TOPIC, 1)]), ("records", p0[:2] + p1[:2]), ("do", store.forget),
        ("records", p0[2:3]),  # the commit finds no claim: rolled back; both partitions are re-read
        ("records", p0 + p1),  # what the consumer delivers after the seeks to the beginning
    ])  # fmt: skip
    beginning = -2  # confluent_kafka.OFFSET_BEGINNING
    assert {(TOPIC, 0, beginning), (TOPIC, 1, beginning)} <= set(consumer.seeks)
    assert store.epochs == {(TOPIC, 0): 1, (TOPIC, 1): 1}  # claimed again
    assert store.stored_offsets == {(TOPIC, 0): 4, (TOPIC, 1): 4}
    assert _stored_rows(store) == _expected(a + b)


def test_records_are_applied_once_across_checkpoints(  # the store only ever sees increasing offsets
) -> None:
    a = _payments("a", 9)
    p0 = records(TOPIC, 0, a)
    store = MemoryCheckpoints()
    _run(store, [("assign", [(TOPIC, 0)]), ("records", p0[:3]), ("records", p0[3:6]), ("records", p0[6:])])
    assert store.stored_offsets == {(TOPIC, 0): 9} and store.commits >= 3
    assert _stored_rows(store) == _expected(a)
