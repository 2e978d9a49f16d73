"""Idle-entity eviction by each view's ttl, without services: state and rows of entities idle past the
horizon go, active ones stay, and an evicted entity seen again gets the values keeping it would give."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from livectx_ingest.streaming.apply import EVICT_SWEEP_S, Partition
from livectx_ingest.streaming.online_writer import FeastRedisWriter, RowWrites

from livectx.features.incremental import GroupState
from livectx.features.recompute import recompute_online
from livectx.features.spec import FeatureGroup
from livectx.repo.compile import FOREVER
from tests.example import FEATURE_GROUPS, Transaction

START = datetime(2026, 3, 10, tzinfo=UTC)
TXN = [g for g in FEATURE_GROUPS if g.event_type is Transaction and not g.rekeyed]


def _short(group: FeatureGroup, ttl: timedelta = timedelta(hours=1)) -> FeatureGroup:
    return dataclasses.replace(group, ttl=ttl)


def _payment(user: str, at: datetime, n: int) -> Transaction:
    return Transaction(
        event_time=at, txn_id=f"{user}-{n}", user_id=user, card_id="c", merchant_id=f"m{n % 3}",
        amount=10.0 + n, currency="EUR", ip=f"10.0.0.{n % 4}", country="DE",
    )  # fmt: skip


def _apply(state: GroupState, events: list[Transaction]) -> None:
    for offset, event in enumerate(events):
        values = tuple(getattr(event, c) for c in state.columns)
        state.apply(event.user_id, event.event_time_ms, offset, values)


def _same(row: object, expected: object) -> bool:
    fields = ("window_start_ms", "window_end_ms", "newest_event_ms", "values")
    return [getattr(row, f) for f in fields] == [getattr(expected, f) for f in fields]


@pytest.mark.parametrize("group", TXN, ids=lambda g: g.name)
def test_idle_entities_go_active_ones_stay_and_a_returning_one_equals_the_recomputation(group: FeatureGroup) -> None:
    group = _short(group)
    state = GroupState(group)
    idle_ms = state.idle_ms
    assert idle_ms == 3_600_000 + group.window.size_ms + group.window.grace_ms
    early = [_payment("idle", START + timedelta(minutes=n), n) for n in range(5)]
    early += [_payment("active", START + timedelta(minutes=n), 100 + n) for n in range(5)]
    _apply(state, early)
    later = START + timedelta(milliseconds=idle_ms) + timedelta(hours=1)
    _apply(state, [_payment("active", later, 200)])
    assert state.evict_idle() == ["idle"]
    assert "idle" not in state.newest and "idle" not in state.buckets and "idle" not in state.series
    assert _same(state.row("active"), recompute_online(group, [*early, _payment("active", later, 200)])["active"])
    # Seen again after the horizon: the same values as if its old state had been kept.
    back = [_payment("idle", later + timedelta(seconds=n), 300 + n) for n in range(3)]
    _apply(state, back)
    everything = [*early, _payment("active", later, 200), *back]
    assert _same(state.row("idle"), recompute_online(group, everything)["idle"])
    assert state.evict_idle() == []


def test_a_view_kept_forever_never_evicts() -> None:
    state = GroupState(_short(TXN[0], FOREVER))
    assert state.idle_ms is None
    _apply(state, [_payment("a", START, 1), _payment("b", START + timedelta(days=3650), 2)])
    assert state.evict_idle() == []


def test_a_partition_sweeps_at_most_every_few_seconds_unless_forced_and_drops_evicted_from_dirty() -> None:
    group = _short(TXN[0])
    state = GroupState(group)
    part = Partition(1, 0, {group.name: state})
    _apply(state, [_payment("idle", START, 1), _payment("active", START + timedelta(days=1), 2)])
    part.dirty[group.name].update({"idle", "active"})
    assert part.evict_idle(100.0) == {group.name: ["idle"]}
    assert part.dirty[group.name] == {"active"}
    _apply(state, [_payment("idle", START, 3), _payment("active", START + timedelta(days=2), 4)])
    assert part.evict_idle(100.0 + EVICT_SWEEP_S / 2) == {}  # too soon
    assert part.evict_idle(100.0 + EVICT_SWEEP_S / 2, force=True) == {group.name: ["idle"]}


def test_an_evicted_entity_s_row_is_deleted_with_the_view_s_fields_only() -> None:
    group = TXN[0]

    class NoScripts:
        def register_script(self, _script: str) -> None:
            return None

    writer = FeastRedisWriter(NoScripts(), "livectx", group)
    rows = RowWrites(1)
    rows.remove(writer, "u1")
    [(key, hdel)] = rows.removals()
    assert key == writer.redis_key("u1") and hdel in rows.commands() and len(rows) == 1
    for field in [*writer.layout.fields.values(), writer.layout.ts_field, writer.offset_field_name]:
        assert field in hdel
    assert hdel.startswith(b"*%d\r\n$4\r\nHDEL\r\n" % (2 + len(writer.layout.fields) + 2))


def test_a_hash_lives_at_least_the_ttl_after_its_last_write() -> None:
    class NoScripts:
        def register_script(self, _script: str) -> None:
            return None

    writer = FeastRedisWriter(NoScripts(), "livectx", _short(TXN[0], timedelta(seconds=100)))
    assert writer.expire_due("u", 0) == 110  # refreshed at 0 s: alive until 110 s
    assert writer.expire_due("u", 9_000) == 0  # written at 9 s, not refreshed: still alive until 109 s
    assert writer.expire_due("u", 10_000) == 110
