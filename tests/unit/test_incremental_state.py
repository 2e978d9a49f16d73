"""The engine's incremental window state equals the batch recomputation, event by event."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from livectx.features.incremental import GroupState
from livectx.features.recompute import fully_late, recompute_online
from livectx.features.spec import FeatureGroup
from tests.example import FEATURE_GROUPS, Login, Transaction

START = datetime(2026, 3, 10, tzinfo=UTC)


def _stream(seed: int, n: int, spread_s: int) -> list[Transaction | Login]:
    """Mostly in order, with jitter wider than some graces, so late and within-grace events both occur."""
    rng = random.Random(seed)
    out: list[Transaction | Login] = []
    clock = 0.0
    for i in range(n):
        clock += rng.expovariate(1 / spread_s)
        jitter = rng.choice([0, 0, 0, -rng.uniform(0, 120), -rng.uniform(0, 4000)])
        at = START + timedelta(seconds=max(0.0, clock + jitter), milliseconds=rng.randrange(1000))
        user = f"u{rng.randrange(4)}"
        if rng.random() < 0.2:
            out.append(
                Login(
                    event_time=at,
                    login_id=f"l{i}",
                    user_id=user,
                    ip="1.1.1.1",
                    device_id="d",
                    success=rng.random() < 0.5,
                )
            )
        else:
            out.append(
                Transaction(
                    event_time=at,
                    txn_id=f"t{i}",
                    user_id=user,
                    card_id=f"c{rng.randrange(5)}",
                    merchant_id=f"m{rng.randrange(9)}",
                    amount=round(rng.uniform(0, 500), 2),
                    currency="EUR",
                    ip=f"10.0.0.{rng.randrange(6)}",
                    country="DE",
                )
            )
    return out


def _replay(group: FeatureGroup, events: list, check_every: bool) -> GroupState:  # type: ignore[type-arg]
    state = GroupState(group)
    seen: list = []  # type: ignore[type-arg]
    for offset, event in enumerate(events):
        if not isinstance(event, group.event_type):
            continue
        entity = getattr(event, group.entity_key)
        values = tuple(getattr(event, c) for c in state.columns)
        state.apply(entity, event.event_time_ms, offset, values)
        seen.append(event)
        if check_every:
            expected = recompute_online(group, seen)[entity]
            got = state.row(entity)
            assert (got.window_start_ms, got.window_end_ms, got.newest_event_ms, got.values) == (
                expected.window_start_ms,
                expected.window_end_ms,
                expected.newest_event_ms,
                expected.values,
            ), (group.name, offset)
    return state


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("spread_s", [5, 90])
def test_row_after_every_event_equals_recomputation(group: FeatureGroup, spread_s: int) -> None:
    _replay(group, _stream(11, 250, spread_s), check_every=True)


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_late_events_are_rejected_exactly_when_every_window_has_closed(group: FeatureGroup) -> None:
    state = GroupState(group)
    newest: dict[str, int] = {}
    for offset, event in enumerate(_stream(3, 400, 60)):
        if not isinstance(event, group.event_type):
            continue
        entity, ts = getattr(event, group.entity_key), event.event_time_ms
        latest = max(ts, newest.get(entity, ts))
        newest[entity] = latest
        applied = state.apply(entity, ts, offset, tuple(getattr(event, c) for c in state.columns))
        assert applied == (not fully_late(group, ts, latest - group.window.grace_ms - ts))


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_dump_and_load_round_trip_mid_stream(group: FeatureGroup) -> None:
    events = _stream(5, 300, 30)
    half = _replay(group, events[:150], check_every=False)
    restored = GroupState(group)
    for entity in list(half.entities()):
        restored.load(entity, half.dump(entity))
    for offset, event in enumerate(events[150:], start=150):
        if isinstance(event, group.event_type):
            values = tuple(getattr(event, c) for c in restored.columns)
            restored.apply(getattr(event, group.entity_key), event.event_time_ms, offset, values)
    expected = recompute_online(group, [e for e in events if isinstance(e, group.event_type)])
    for entity, row in expected.items():
        got = restored.row(entity)
        assert (got.window_end_ms, got.newest_event_ms, got.values) == (
            row.window_end_ms,
            row.newest_event_ms,
            row.values,
        )


def test_sliding_distinct_counts_keep_latest_sightings_pruned_at_dump_and_load_saved_series() -> None:
    group = next(g for g in FEATURE_GROUPS if g.name == "user_txn_10m")
    events = [e for e in _stream(7, 400, 60) if isinstance(e, Transaction)]
    state = _replay(group, events, check_every=False)
    legacy = GroupState(group)
    legacy.sightings_only = False  # the event-series state earlier versions saved
    for offset, event in enumerate(events):
        legacy.apply(event.user_id, event.event_time_ms, offset, tuple(getattr(event, c) for c in legacy.columns))
    assert state.sightings_only and not state.series, "no per-event state is kept"
    for entity in list(state.entities()):
        newest = state.newest[entity]
        restored, upgraded = GroupState(group), GroupState(group)
        restored.load(entity, state.dump(entity))
        upgraded.load(entity, legacy.dump(entity))
        assert all(t >= newest - group.window.size_ms for s in state.sightings[entity] for t in s.values())
        assert restored.sightings[entity] == state.sightings[entity]
        assert restored.row(entity) == upgraded.row(entity) == legacy.row(entity) == state.row(entity)
        with pytest.raises(ValueError, match="only its current window is known"):
            state.window(entity, newest - group.window.size_ms - 1, newest - 1)
