"""Batch application reaches exactly the state event-by-event ``GroupState.apply`` reaches."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pyarrow as pa
import pytest

from livectx.features.batch_apply import SEQ, TS, BatchApplier, fold_exact
from livectx.features.incremental import GroupState, _exact_add
from livectx.features.spec import Feature, FeatureGroup, Window
from tests.example import FEATURE_GROUPS, TRANSACTIONS, Transaction

MIN = timedelta(minutes=1)
ALL_KINDS = (
    Feature("n", "count"),
    Feature("big", "count", where=("currency", "USD")),
    Feature("hi", "max", "amount"),
    Feature("lo", "min", "amount"),
    Feature("total", "sum", "amount"),
    Feature("avg", "mean", "amount"),
    Feature("ips", "distinct_count", "ip"),
    Feature("last", "last", "amount"),
    Feature("top_ip", "max", "ip"),
)
CUSTOM = tuple(
    FeatureGroup(f"all_{kind}", TRANSACTIONS, Transaction, "user", "user_id", window, ALL_KINDS)
    for kind, window in (
        ("tumbling", Window("tumbling", 5 * MIN, grace=30 * timedelta(seconds=1))),
        ("hopping", Window("hopping", 20 * MIN, grace=MIN, step=5 * MIN)),
        ("sliding", Window("sliding", 10 * MIN, grace=2 * MIN)),
    )
)
# A mean with no sum of its column beside it folds its own partials (with one, it copies the sum's).
MEAN_ALONE = FeatureGroup(
    "mean_alone", TRANSACTIONS, Transaction, "user", "user_id", Window("tumbling", 5 * MIN, grace=MIN),
    (Feature("avg", "mean", "amount"), Feature("n", "count")),
)  # fmt: skip
GROUPS = (*CUSTOM, MEAN_ALONE, *FEATURE_GROUPS)


def _rows(group: FeatureGroup, seed: int, n: int, disorder: float) -> list[dict]:  # type: ignore[type-arg]
    """Event columns: mostly in order, some jitter (within and beyond grace), ties in event time, few users."""
    rng = random.Random(seed)
    clock = 1_773_100_800_000
    rows = []
    for i in range(n):
        clock += rng.choice([0, 0, rng.randrange(1, 120_000)])
        ts = clock - (rng.randrange(0, 2_400_000) if rng.random() < disorder else 0)
        row = {
            "user_id": f"u{rng.randrange(7)}",
            TS: ts,
            SEQ: 1000 + i,
            "amount": rng.choice([0.1, 0.2, 0.3, 1e16, -0.0, 0.0, 3.5, round(rng.uniform(0, 500), 2)]),
            "currency": rng.choice(["EUR", "USD"]),
            "ip": f"10.0.0.{rng.randrange(6)}",
            "card_id": f"c{rng.randrange(5)}",
            "merchant_id": f"m{rng.randrange(9)}",
            "success": rng.random() < 0.5,
        }
        rows.append({k: v for k, v in row.items() if k in (group.entity_key, TS, SEQ, *GroupState(group).columns)})
    return rows


def _per_event(group: FeatureGroup, rows: list[dict]) -> tuple[GroupState, list[int]]:  # type: ignore[type-arg]
    state = GroupState(group)
    late = []
    for i, row in enumerate(rows):
        if not state.apply(row[group.entity_key], row[TS], row[SEQ], tuple(row[c] for c in state.columns)):
            late.append(i)
    return state, late


def _batched(group: FeatureGroup, rows: list[dict], sizes: list[int]) -> tuple[GroupState, list[int], set]:  # type: ignore[type-arg]
    state = GroupState(group)
    applier = BatchApplier.for_group(group, state.columns)
    assert applier is not None
    late, touched, at = [], set(), 0
    for size in sizes:
        chunk = rows[at : at + size]
        got_touched, got_late = applier.apply(state, pa.Table.from_pylist(chunk))
        touched |= got_touched
        late += [at + r.row for r in got_late]
        assert all(chunk[r.row][TS] == r.event_ms and chunk[r.row][group.entity_key] == r.entity for r in got_late)
        assert all(r.newest_ms - group.window.grace_ms > r.event_ms for r in got_late)
        at += size
    return state, late, touched


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # tells -0.0 from 0.0 and 1 from 1.0


def _assert_equal(group: FeatureGroup, want: GroupState, got: GroupState) -> None:
    assert want.newest == got.newest
    for entity in want.entities():
        assert _same(want.row(entity), got.row(entity)), entity
        if want.sightings_only:
            assert want.sightings[entity] == got.sightings[entity]
        elif want.sliding:
            assert want.series[entity] == got.series[entity]
        else:
            assert sorted(want.buckets[entity]) == sorted(got.buckets[entity])
            for start in want.buckets[entity]:  # every window the buckets still serve, not only the current one
                for end in range(start + want.step, start + want.size + 1, want.step):
                    assert _same(want.window(entity, end - want.size, end), got.window(entity, end - want.size, end))
        # A restored state continues identically: dump/load round-trips whichever path built it.
        clone = GroupState(group)
        clone.load(entity, got.dump(entity))
        assert _same(clone.row(entity), want.row(entity))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize(("seed", "disorder"), [(1, 0.0), (2, 0.05), (3, 0.3)])
def test_batches_of_any_size_reach_the_per_event_state(group: FeatureGroup, seed: int, disorder: float) -> None:
    rows = _rows(group, seed, 1_500, disorder)
    want, want_late = _per_event(group, rows)
    rng = random.Random(seed)
    random_sizes = [rng.randrange(1, 25) for _ in range(60)]
    for sizes in ([1_500], [1] * 50 + [1_450], [*random_sizes, len(rows) - sum(random_sizes)]):
        got, got_late, touched = _batched(group, rows, sizes)
        _assert_equal(group, want, got)
        assert got_late == want_late
        assert touched == set(want.entities())
    if disorder and group in CUSTOM:
        assert want_late, "the stream should hold events too late for any window"


def test_fold_exact_is_exactly_rounded_and_interchangeable_with_exact_add() -> None:
    rng = random.Random(5)
    for _ in range(300):
        values = [
            rng.choice([1e16, -1e16, 0.1, 0.2, 1e-300, 3.0, -0.0]) * rng.random() for _ in range(rng.randrange(1, 30))
        ]
        folded: list[float] = []
        added: list[float] = []
        cut = rng.randrange(len(values) + 1)
        fold_exact(folded, values[:cut])
        for v in values[cut:]:
            _exact_add(folded, v)  # mixing the two keeps the sum exact
        for v in values:
            _exact_add(added, v)
        assert _same(math.fsum(folded), math.fsum(values)) or math.fsum(values) == 0.0
        assert math.fsum(folded) == math.fsum(added)


def test_groups_it_cannot_take_are_refused() -> None:
    odd = FeatureGroup(
        "odd",
        TRANSACTIONS,
        Transaction,
        "user",
        "user_id",
        Window("tumbling", MIN),
        (Feature("usd_max", "max", "amount", where=("currency", "USD")),),
    )
    assert BatchApplier.for_group(odd, GroupState(odd).columns) is None
