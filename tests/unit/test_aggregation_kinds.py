"""The aggregation kinds: one object per kind, and each gives the same value on every path."""

from __future__ import annotations

import random
from typing import Any, get_args

import pytest

from livectx.features.aggregations import KINDS, kind_of
from livectx.features.exact_sum import exact_add
from livectx.features.spec import Aggregation

VALUES = [0.1, 0.2, 0.3, 1e16, -0.0, 3.5, -1e16, 499.99, 0.1, 7.0]


def test_every_declared_aggregation_has_a_kind() -> None:
    assert set(KINDS) == set(get_args(Aggregation))
    assert all(kind.name == name for name, kind in KINDS.items())
    with pytest.raises(ValueError, match="median"):
        kind_of("median")


def _fold(name: str, values: list[Any], times: list[int], seqs: list[int]) -> Any:
    kind = KINDS[name]
    add = kind.adder(0)
    state = kind.empty()
    for ts, seq, value in zip(times, seqs, values, strict=True):
        state = add(state, ts, seq, (value,))
    return state


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("seed", range(3))
def test_states_columns_and_events_agree(name: str, seed: int) -> None:
    """Adding event by event, merging bucket states, and aggregating raw values give the same result."""
    rng = random.Random(seed)
    n = rng.randrange(0, 12)
    rows = sorted((rng.randrange(5), i, rng.choice(VALUES)) for i in range(n))  # (ts, seq) order
    times, seqs, values = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    kind = KINDS[name]
    whole = kind.result(_fold(name, values, times, seqs))
    cut = rng.randrange(0, n + 1)
    parts = [_fold(name, values[:cut], times[:cut], seqs[:cut]), _fold(name, values[cut:], times[cut:], seqs[cut:])]
    column = times if name == "count" else values
    shuffled = list(range(n))  # consumption order need not be event-time order for the recomputation
    rng.shuffle(shuffled)
    by_arrival = sorted(shuffled, key=lambda i: seqs[i])
    assert repr(kind.over_states(parts)) == repr(whole)
    assert repr(kind.over_columns(column)) == repr(whole)
    assert repr(kind.over_events([column[i] for i in by_arrival], [times[i] for i in by_arrival])) == repr(whole)
    assert kind.load(kind.dump(_fold(name, values, times, seqs))) == _fold(name, values, times, seqs)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_where_adder_skips_other_events(name: str) -> None:
    kind = KINDS[name]
    add = kind.where_adder(0, 1, "USD")
    state = kind.empty()
    for ts, (value, currency) in enumerate([(1.5, "USD"), (9.0, "EUR"), (2.5, "USD")]):
        state = add(state, ts, ts, (value, currency))
    expected = {"count": 2, "distinct_count": 2, "sum": 4.0, "mean": 2.0, "max": 2.5, "min": 1.5, "last": 2.5}
    assert kind.result(state) == expected[name]


def test_empty_results_are_the_engine_nulls() -> None:
    nulls = {name: kind.result(kind.empty()) for name, kind in KINDS.items()}
    assert nulls == {n: 0 if n in ("count", "distinct_count") else None for n in KINDS}
    assert {name: kind.over_columns([]) for name, kind in KINDS.items()} == nulls
    assert {name: kind.over_states([kind.empty(), kind.empty()]) for name, kind in KINDS.items()} == nulls


def test_sum_keeps_exact_partials() -> None:
    state: list[float] = []
    for x in (1e16, 1.0, -1e16):
        exact_add(state, x)
    assert KINDS["sum"].result(state) == 1.0


def test_sql_per_kind() -> None:
    sql = {name: kind.sql('"amount"', "", "w") for name, kind in KINDS.items()}
    assert sql["count"] == "count(*) OVER w"
    assert sql["distinct_count"] == 'count(DISTINCT "amount") OVER w'
    assert sql["mean"] == 'CAST(avg("amount") OVER w AS DOUBLE)'
    assert sql["max"] == 'CAST(max("amount") OVER w AS DOUBLE)'
    assert sql["last"] == 'CAST(arg_max("amount", struct_pack(t := ts, o := ord)) OVER w AS DOUBLE)'
