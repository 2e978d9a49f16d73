"""The offline rows (Feast's offline store content) agree with the batch recomputation after every event."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from livectx.features.offline_rows import offline_rows, offline_schema
from livectx.features.recompute import recompute_online
from tests.example import FEATURE_GROUPS, get_scenario

START = datetime(2026, 1, 1, tzinfo=UTC)


def _scenario(count: int = 2500) -> list:  # type: ignore[type-arg]
    return [e for _t, e in itertools.islice(get_scenario("fraud")(5, START, 5.0, users=15, attack_every=400), count)]


@pytest.mark.parametrize("group", [g for g in FEATURE_GROUPS if g.name != "user_click_1h"], ids=lambda g: g.name)
def test_every_row_is_the_recomputed_online_row_after_its_event(group) -> None:  # type: ignore[no-untyped-def]
    events = _scenario()
    table = offline_rows(group, events, partition=2, first_offset=100, written_ms=1_000)
    assert table.schema == offline_schema(group)
    rows = table.to_pylist()
    of_type = [(i, e) for i, e in enumerate(events) if isinstance(e, group.event_type)]
    assert len(rows) == len(of_type) > 100
    for n, (row, (position, event)) in enumerate(zip(rows, of_type, strict=True)):
        entity = getattr(event, group.entity_key)
        history = [e for _i, e in of_type[: n + 1] if getattr(e, group.entity_key) == entity]
        expected = recompute_online(group, history)[entity]
        assert row[group.entity_key] == entity
        assert row["event_timestamp"].timestamp() * 1000 == expected.newest_event_ms
        assert (row["window_start_ms"], row["window_end_ms"]) == (expected.window_start_ms, expected.window_end_ms)
        assert row["source_offset"] == 100 + position and row["source_partition"] == 2
        assert row[group.event_time_field] == expected.newest_event_ms
        assert row[group.window_end_field] == expected.window_end_ms
        assert row[group.written_field] == row["written_ms"] == 1_000
        assert {f.name: row[f.name] for f in group.features} == expected.values  # exactly: same summation order


def test_created_timestamp_is_strictly_increasing_in_write_order() -> None:
    group = FEATURE_GROUPS[0]
    created = offline_rows(group, _scenario(500), written_ms=5_000)["created_timestamp"]
    values = created.cast(pa.int64()).to_pylist()
    assert values == sorted(set(values)) and values[0] == 5_000_000


def test_late_and_out_of_order_events_match_the_recomputation() -> None:
    """Blocks reversed (late events within grace) and every 50th event held back 400 positions (~80 s of
    event time: beyond grace): the final row per entity still equals the batch recomputation."""
    events = _scenario(3000)
    shuffled = [e for i in range(0, len(events), 7) for e in reversed(events[i : i + 7])]
    held = shuffled[::50]
    shuffled = [e for i, e in enumerate(shuffled) if i % 50]
    for n, event in enumerate(held):
        shuffled.insert(min(len(shuffled), n * 49 + 400), event)
    for group in FEATURE_GROUPS[:4]:
        final = {row[group.entity_key]: row for row in offline_rows(group, shuffled, written_ms=0).to_pylist()}
        expected = recompute_online(group, [e for e in shuffled if isinstance(e, group.event_type)])
        assert final.keys() == expected.keys()
        for entity, row in final.items():
            assert {f.name: row[f.name] for f in group.features} == expected[entity].values, (group.name, entity)
            assert row["window_end_ms"] == expected[entity].window_end_ms
