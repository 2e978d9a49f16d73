"""Checkpointed state keeps its bytes: running workers persist ``GroupState.dump`` in Redis, so a refactor of
the aggregation kinds must read what earlier code wrote and write the same bytes again.

The expected bytes and rows below were captured from the code before aggregation kinds became objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from livectx.features.incremental import GroupState
from livectx.features.spec import Feature, FeatureGroup, Window
from tests.example import TRANSACTIONS, Transaction

MIN = timedelta(minutes=1)
T0 = 1_773_100_800_000
ALL_KINDS = (
    Feature("n", "count"),
    Feature("usd", "count", where=("currency", "USD")),
    Feature("hi", "max", "amount"),
    Feature("lo", "min", "amount"),
    Feature("total", "sum", "amount"),
    Feature("avg", "mean", "amount"),
    Feature("ips", "distinct_count", "ip"),
    Feature("last", "last", "amount"),
    Feature("top_ip", "max", "ip"),
    Feature("eur_total", "sum", "amount", where=("currency", "EUR")),
)
NO_SETS = tuple(f for f in ALL_KINDS if f.aggregation != "distinct_count")
DISTINCT_ONLY = (Feature("ips", "distinct_count", "ip"), Feature("cards", "distinct_count", "card_id"))


def _group(name: str, window: Window, features: tuple[Feature, ...]) -> FeatureGroup:
    return FeatureGroup(name, TRANSACTIONS, Transaction, "user", "user_id", window, features)


TUMBLING = _group("k_tumbling", Window("tumbling", 5 * MIN, grace=MIN), ALL_KINDS)
HOPPING = _group("k_hopping", Window("hopping", 10 * MIN, grace=MIN, step=5 * MIN), ALL_KINDS)
PLAIN = _group("k_plain", Window("hopping", 10 * MIN, grace=MIN, step=5 * MIN), NO_SETS)
SLIDING = _group("k_sliding", Window("sliding", 10 * MIN, grace=2 * MIN), ALL_KINDS)
SIGHTINGS = _group("k_sightings", Window("sliding", 10 * MIN, grace=MIN), DISTINCT_ONLY)

#: (seconds after T0, seq, amount, currency, ip, card): ties in time, float sums that need exact partials.
EVENTS = (
    (0, 1, 0.1, "USD", "10.0.0.1", "c1"),
    (10, 2, 0.2, "EUR", "10.0.0.2", "c1"),
    (10, 3, 1e16, "EUR", "10.0.0.1", "c2"),
    (250, 4, 0.3, "USD", "10.0.0.3", "c2"),
    (200, 5, -0.0, "EUR", "10.0.0.2", "c3"),
    (320, 6, 3.5, "USD", "10.0.0.9", "c1"),
    (610, 7, 1.0, "EUR", "10.0.0.1", "c4"),
    (700, 8, 499.99, "USD", "10.0.0.4", "c1"),
    (690, 9, -1e16, "EUR", "10.0.0.4", "c2"),
)


def _applied(group: FeatureGroup) -> GroupState:
    state = GroupState(group)
    fields = {"amount": 2, "currency": 3, "ip": 4, "card_id": 5}
    for event in EVENTS:
        values = tuple(event[fields[c]] for c in state.columns)
        state.apply("u", T0 + event[0] * 1000, event[1], values)
    return state


def _hand_built() -> GroupState:
    """A bucket state written by hand: empty states next to full ones, and a set of mixed types."""
    state = GroupState(TUMBLING)
    start = T0 + 300_000
    state.newest["h"] = start + 5_000
    full = [start + 5_000, 3, 2, 7.25, -1.5, [1e-16, 2.5], [[0.5, 1e16], 2], {"b", 1, "a"}, [start, 4, 7.25], "x", []]
    empty = [start - 1_000, 0, 0, None, None, [], [[], 0], set(), None, None, []]
    state.buckets["h"] = {start - 300_000: empty, start: full}
    return state


BUILDERS: dict[str, Callable[[], tuple[GroupState, str]]] = {
    "tumbling": lambda: (_applied(TUMBLING), "u"),
    "hopping": lambda: (_applied(HOPPING), "u"),
    "plain": lambda: (_applied(PLAIN), "u"),
    "sliding": lambda: (_applied(SLIDING), "u"),
    "sightings": lambda: (_applied(SIGHTINGS), "u"),
    "hand_built": lambda: (_hand_built(), "h"),
}
GROUPS = {"tumbling": TUMBLING, "hopping": HOPPING, "plain": PLAIN, "sliding": SLIDING, "sightings": SIGHTINGS}
GROUPS["hand_built"] = TUMBLING

# -- captured from the original code (see the module docstring) ---------------------------------------------
EXPECTED_DUMPS: dict[str, bytes] = {
    "hand_built": (
        b"[1773101105000,[[1773100800000,1773101099000,0,0,null,null,[],[[],0],[],null,null,[]],[177310110"
        b'0000,1773101105000,3,2,7.25,-1.5,[1e-16,2.5],[[0.5,1e+16],2],["a","b",1],[1773101100000,4,7.25],'
        b'"x",[]]]]'
    ),
    "hopping": (
        b"[1773101500000,[[1773100800000,1773101050000,5,2,1e+16,-0.0,[2.7755575615628914e-17,0.6,1e+16],["
        b'[2.7755575615628914e-17,0.6,1e+16],5],["10.0.0.1","10.0.0.2","10.0.0.3"],[1773101050000,4,0.3],"'
        b'10.0.0.3",[0.2,1e+16]],[1773101100000,1773101120000,1,1,3.5,3.5,[3.5],[[3.5],1],["10.0.0.9"],[17'
        b'73101120000,6,3.5],"10.0.0.9",[]],[1773101400000,1773101500000,3,1,499.99,-1e+16,[0.990000000000'
        b'0091,-9999999999999500.0],[[0.9900000000000091,-9999999999999500.0],3],["10.0.0.1","10.0.0.4"],['
        b'1773101500000,8,499.99],"10.0.0.4",[1.0,-1e+16]]]]'
    ),
    "plain": (
        b"[1773101500000,[[1773100800000,1773101050000,5,2,1e+16,-0.0,[2.7755575615628914e-17,0.6,1e+16],["
        b'[2.7755575615628914e-17,0.6,1e+16],5],[1773101050000,4,0.3],"10.0.0.3",[0.2,1e+16]],[17731011000'
        b'00,1773101120000,1,1,3.5,3.5,[3.5],[[3.5],1],[1773101120000,6,3.5],"10.0.0.9",[]],[1773101400000'
        b",1773101500000,3,1,499.99,-1e+16,[0.9900000000000091,-9999999999999500.0],[[0.9900000000000091,-"
        b'9999999999999500.0],3],[1773101500000,8,499.99],"10.0.0.4",[1.0,-1e+16]]]]'
    ),
    "sightings": (
        b'[1773101500000,[[["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.9","10.0.0.4"],[1773101410000,1773101'
        b'000000,1773101050000,1773101120000,1773101500000]],[["c1","c2","c3","c4"],[1773101500000,1773101'
        b"490000,1773101000000,1773101410000]]]]"
    ),
    "sliding": (
        b"[1773101500000,[[1773101000000,1773101050000,1773101120000,1773101410000,1773101490000,177310150"
        b'0000],[5,4,6,7,9,8],["EUR","USD","USD","EUR","EUR","USD"],[-0.0,0.3,3.5,1.0,-1e+16,499.99],["10.'
        b'0.0.2","10.0.0.3","10.0.0.9","10.0.0.1","10.0.0.4","10.0.0.4"]]]'
    ),
    "tumbling": (
        b'[1773101500000,[[1773101100000,1773101120000,1,1,3.5,3.5,[3.5],[[3.5],1],["10.0.0.9"],[177310112'
        b'0000,6,3.5],"10.0.0.9",[]],[1773101400000,1773101500000,3,1,499.99,-1e+16,[0.9900000000000091,-9'
        b'999999999999500.0],[[0.9900000000000091,-9999999999999500.0],3],["10.0.0.1","10.0.0.4"],[1773101'
        b'500000,8,499.99],"10.0.0.4",[1.0,-1e+16]]]]'
    ),
}
EXPECTED_ROWS: dict[str, tuple[int, int, int, dict[str, Any]]] = {
    "hand_built": (
        1773101100000,
        1773101400000,
        1773101105000,
        {
            "n": 3,
            "usd": 2,
            "hi": 7.25,
            "lo": -1.5,
            "total": 2.5,
            "avg": 5000000000000000.0,
            "ips": 3,
            "last": 7.25,
            "top_ip": "x",
            "eur_total": None,
        },
    ),
    "hopping": (
        1773101100000,
        1773101700000,
        1773101500000,
        {
            "n": 4,
            "usd": 2,
            "hi": 499.99,
            "lo": -1e16,
            "total": -9999999999999496.0,
            "avg": -2499999999999874.0,
            "ips": 3,
            "last": 499.99,
            "top_ip": "10.0.0.9",
            "eur_total": -1e16,
        },
    ),
    "plain": (
        1773101100000,
        1773101700000,
        1773101500000,
        {
            "n": 4,
            "usd": 2,
            "hi": 499.99,
            "lo": -1e16,
            "total": -9999999999999496.0,
            "avg": -2499999999999874.0,
            "last": 499.99,
            "top_ip": "10.0.0.9",
            "eur_total": -1e16,
        },
    ),
    "sightings": (1773100900000, 1773101500000, 1773101500000, {"ips": 5, "cards": 4}),
    "sliding": (
        1773100900000,
        1773101500000,
        1773101500000,
        {
            "n": 6,
            "usd": 3,
            "hi": 499.99,
            "lo": -1e16,
            "total": -9999999999999496.0,
            "avg": -1666666666666582.8,
            "ips": 5,
            "last": 499.99,
            "top_ip": "10.0.0.9",
            "eur_total": -1e16,
        },
    ),
    "tumbling": (
        1773101400000,
        1773101700000,
        1773101500000,
        {
            "n": 3,
            "usd": 1,
            "hi": 499.99,
            "lo": -1e16,
            "total": -9999999999999500.0,
            "avg": -3333333333333166.5,
            "ips": 2,
            "last": 499.99,
            "top_ip": "10.0.0.4",
            "eur_total": -1e16,
        },
    ),
}


def _row(state: GroupState, entity: str) -> tuple[int, int, int, dict[str, Any]]:
    row = state.row(entity)
    return row.window_start_ms, row.window_end_ms, row.newest_event_ms, row.values


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_dump_writes_the_same_bytes(case: str) -> None:
    state, entity = BUILDERS[case]()
    assert state.dump(entity) == EXPECTED_DUMPS[case]
    assert _row(state, entity) == EXPECTED_ROWS[case]


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_load_reads_old_bytes_and_dumps_them_again(case: str) -> None:
    entity = BUILDERS[case]()[1]
    state = GroupState(GROUPS[case])
    state.load(entity, EXPECTED_DUMPS[case])
    assert _row(state, entity) == EXPECTED_ROWS[case]
    assert state.dump(entity) == EXPECTED_DUMPS[case]
