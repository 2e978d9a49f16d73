"""The batch recomputation's window semantics (the reference the engine is tested against)."""

from datetime import UTC, datetime, timedelta

import pytest

from livectx.features.recompute import aggregate, fully_late, late_events, online_window, recompute_online
from livectx.features.spec import Feature, FeatureGroup, Window
from tests.example import Transaction

T0 = datetime(2026, 3, 10, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _txn(seconds: float, amount: float = 1.0, user: str = "u", ip: str = "1.1.1.1") -> Transaction:
    return Transaction(
        event_time=T0 + timedelta(seconds=seconds),
        txn_id=f"t{seconds}",
        user_id=user,
        card_id="c",
        merchant_id="m",
        amount=amount,
        currency="EUR",
        ip=ip,
        country="DE",
    )


def _group(window: Window, *features: Feature) -> FeatureGroup:
    return FeatureGroup(
        "g",
        "t",
        Transaction,
        "user",
        "user_id",
        window,
        features or (Feature("n", "count"), Feature("s", "sum", "amount")),
    )


def test_tumbling_online_row_is_the_newest_events_window() -> None:
    group = _group(Window("tumbling", 5 * MIN, grace=30 * timedelta(seconds=1)))
    row = recompute_online(group, [_txn(10, 1), _txn(290, 2), _txn(310, 4), _txn(320, 8)])["u"]
    assert (row.window_start_ms, row.window_end_ms) == (
        T0.timestamp() * 1000 + 300_000,
        T0.timestamp() * 1000 + 600_000,
    )
    assert row.values == {"n": 2, "s": 12.0}
    assert row.newest_event_ms == int((T0 + timedelta(seconds=320)).timestamp() * 1000)


def test_late_within_grace_counts_beyond_grace_is_late() -> None:
    group = _group(Window("tumbling", 5 * MIN, grace=timedelta(seconds=30)))
    events = [_txn(290), _txn(310), _txn(295), _txn(360), _txn(298)]
    assert [e.txn_id for e in late_events(group, events)] == ["t298"]  # 300 <= 360 - 30
    assert recompute_online(group, events)["u"].values["n"] == 2  # 310 and 360 in [300, 600)


def test_hopping_shows_the_window_closing_soonest() -> None:
    group = _group(Window("hopping", 60 * MIN, step=15 * MIN))
    ms = int(T0.timestamp() * 1000)
    start, end = online_window(group, ms + 20 * 60_000)
    assert (start - ms, end - ms) == (-30 * 60_000, 30 * 60_000)
    assert recompute_online(group, [_txn(60), _txn(20 * 60)])["u"].values["n"] == 2


def test_hopping_event_missing_only_some_windows_is_not_late() -> None:
    group = _group(Window("hopping", 60 * MIN, grace=MIN, step=15 * MIN))
    ts = 14 * 60_000 + 58_000
    assert not fully_late(group, ts, late_by_ms=60_000)  # its window ending at 15:00 closed, others open
    assert fully_late(group, ts, late_by_ms=46 * 60_000)


def test_sliding_window_is_inclusive_and_ends_at_the_newest_event() -> None:
    group = _group(Window("sliding", 10 * MIN), Feature("ips", "distinct_count", "ip"))
    events = [_txn(0, ip="a"), _txn(600, ip="b"), _txn(600.001, ip="c")]
    row = recompute_online(group, events)["u"]
    assert row.window_end_ms - row.window_start_ms == 600_000
    assert row.values["ips"] == 2  # [0.001, 600.001] holds b and c; a at 0 is just outside


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (Feature("c", "count"), 3),
        (Feature("s", "sum", "amount"), 7.0),
        (Feature("m", "mean", "amount"), 7 / 3),
        (Feature("lo", "min", "amount"), 1.0),
        (Feature("hi", "max", "amount"), 4.0),
        (Feature("d", "distinct_count", "ip"), 2),
        (Feature("l", "last", "amount"), 2.0),
    ],
)
def test_aggregations(feature: Feature, expected: float) -> None:
    events = [_txn(1, 1.0, ip="a"), _txn(3, 2.0, ip="b"), _txn(2, 4.0, ip="a")]
    assert aggregate(feature, events) == expected


def test_empty_window_nulls() -> None:
    assert aggregate(Feature("m", "mean", "amount"), []) is None
    assert aggregate(Feature("c", "count"), []) == 0
