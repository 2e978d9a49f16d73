"""Point-in-time values from DuckDB SQL equal the Python reference, and nothing from the future leaks in."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from livectx.errors import LivectxError
from livectx.events import Event
from livectx.features import pit_sql
from livectx.features.recompute import recompute_online
from tests.example import FEATURE_SERVICES, LOGINS, TRANSACTIONS, Login, Transaction, get_scenario, group_named

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
GROUPS = [group_named(n) for n in FEATURE_SERVICES["fraud_features"]]


def _txn(at: timedelta, amount: float, user: str = "u", ip: str = "1.1.1.1", merchant: str = "m1") -> Transaction:
    return Transaction(
        event_time=T0 + at,
        txn_id=f"t{at}",
        user_id=user,
        card_id="c1",
        merchant_id=merchant,
        amount=amount,
        currency="EUR",
        ip=ip,
        country="DE",
    )


def _login(at: timedelta, success: bool, user: str = "u") -> Login:
    return Login(event_time=T0 + at, login_id=f"l{at}", user_id=user, ip="1.1.1.1", device_id="d", success=success)


def _topic(event: Event) -> str:
    return TRANSACTIONS if isinstance(event, Transaction) else LOGINS


def reference(events: list[Event], user: str, t_ms: int) -> dict[str, object]:
    """As-of semantics in plain Python: the entity's events up to t, recomputed; null beyond the TTL."""
    values: dict[str, object] = {}
    for group in GROUPS:
        history = [
            e for e in events if isinstance(e, group.event_type) and e.user_id == user and e.event_time_ms <= t_ms
        ]
        row = recompute_online(group, history).get(user)
        if row is not None and row.newest_event_ms + group.ttl / MS < t_ms:
            row = None
        for name in (f.name for f in group.features):
            values[name] = None if row is None else row.values[name]
        values[group.event_time_field] = None if row is None else row.newest_event_ms
        values[group.window_end_field] = None if row is None else row.window_end_ms
    return values


def training_set(tmp_path: Path, events: list[Event], labels: list[tuple[str, int]]) -> list[dict[str, object]]:
    pq.write_table(pit_sql.events_table((_topic(e), e) for e in events), tmp_path / "events.parquet")
    table = pa.table(
        {
            "user_id": [u for u, _ in labels],
            "event_timestamp": pa.array([t for _, t in labels], pa.timestamp("ms", tz="UTC")),
            "label": list(range(len(labels))),
        }
    )
    pq.write_table(table, tmp_path / "labels.parquet")
    con = pit_sql.connect(tmp_path)
    sources = pit_sql.parquet_sources(con, tmp_path / "events.parquet")
    view, columns = pit_sql.label_relation(con, f"read_parquet('{tmp_path / 'labels.parquet'}')", "user_id")
    rows = con.sql(pit_sql.training_set_sql(GROUPS, sources, view, columns)).to_arrow_table().to_pylist()
    assert [r["label"] for r in rows] == list(range(len(labels)))  # label order kept
    return rows


def _ms(at: timedelta) -> int:
    return int((T0 + at).timestamp() * 1000)


def test_a_later_event_never_leaks_into_an_earlier_label(tmp_path: Path) -> None:
    m = timedelta(minutes=1)
    events: list[Event] = [
        _txn(0 * m, 10.0, ip="a", merchant="m1"),
        _txn(4 * m, 20.0, ip="b", merchant="m2"),
        _txn(6 * m, 500.0, ip="c", merchant="m3"),  # the future for the first two labels
        _login(1 * m, False),
        _login(7 * m, False),
    ]
    labels = [("u", _ms(6 * m - MS)), ("u", _ms(6 * m)), ("u", _ms(-MS)), ("nobody", _ms(6 * m))]
    before, at, too_early, unknown = training_set(tmp_path, events, labels)
    assert before["txn_count_5m"] == 2 and before["txn_amount_max_5m"] == 20.0  # window [10:00, 10:05)
    assert before["txn_amount_sum_1h"] == 30.0 and before["last_txn_amount"] == 20.0
    assert before["distinct_ips_10m"] == 2 and before["distinct_merchants_24h"] == 2
    assert before["login_failures_5m"] == 1 and before["user_txn_5m__event_ms"] == _ms(4 * m)
    assert at["txn_count_5m"] == 1 and at["txn_amount_max_5m"] == 500.0  # inclusive at the event's own time
    assert at["txn_amount_sum_1h"] == 530.0 and at["distinct_ips_10m"] == 3 and at["last_txn_amount"] == 500.0
    assert at["login_failures_5m"] == 1  # the failed login at 10:07 is still in the future
    for row in (too_early, unknown):  # no event yet: null, as Feast returns it (counts too)
        assert all(row[c] is None for g in GROUPS for c in pit_sql.output_columns(g))
    for row, (user, t) in zip((before, at, too_early, unknown), labels, strict=True):
        assert {k: row[k] for k in reference(events, user, t)} == reference(events, user, t)


def test_window_boundaries_filters_and_ttl(tmp_path: Path) -> None:
    s, m = timedelta(seconds=1), timedelta(minutes=1)
    events: list[Event] = [
        _txn(0 * s, 1.0, ip="a"),
        _txn(10 * m, 2.0, ip="b"),  # exactly 10 min later: the sliding window [newest-10m, newest] keeps 10:00
        _txn(15 * m, 4.0, ip="b"),  # a new hop: 1h hopping ends at 10:30 -> [09:30, 10:30)
        _txn(15 * m, 8.0, ip="c"),  # same millisecond: last = the later one in consumption order
        _txn(24 * 60 * m + 1 * s, 16.0, ip="a"),  # the next UTC day: distinct merchants start over
        _login(0 * s, False),
        _login(1 * s, True),  # filtered out by where success = false
        _login(5 * m, False),  # the next 5-minute window
    ]
    labels = [
        ("u", _ms(10 * m)),
        ("u", _ms(15 * m)),
        ("u", _ms(5 * m)),
        ("u", _ms(24 * 60 * m + 1 * s) + 2 * 86_400_000),  # exactly the TTL after the newest payment: served
        ("u", _ms(24 * 60 * m + 1 * s) + 2 * 86_400_000 + 1),  # 1 ms beyond: expired, null
        ("u", _ms(24 * 60 * m + 1 * s)),
        ("u", _ms(1 * s)),
    ]
    rows = training_set(tmp_path, events, labels)
    assert rows[0]["distinct_ips_10m"] == 2 and rows[0]["txn_count_5m"] == 1
    assert rows[1]["last_txn_amount"] == 8.0 and rows[1]["txn_amount_sum_1h"] == 15.0
    assert rows[1]["txn_amount_mean_1h"] == pytest.approx(3.75) and rows[1]["txn_amount_min_1h"] == 1.0
    assert rows[1]["user_txn_1h__window_end_ms"] == _ms(30 * m)
    assert rows[6]["login_failures_5m"] == 1  # two logins in [10:00, 10:05), one failed
    assert rows[2]["login_failures_5m"] == 1 and rows[2]["user_login_5m__window_end_ms"] == _ms(10 * m)
    assert rows[3]["txn_amount_sum_1h"] == 16.0 and rows[4]["txn_amount_sum_1h"] is None
    assert rows[4]["txn_count_5m"] is None and rows[4]["user_txn_10m__event_ms"] is None
    assert rows[5]["distinct_merchants_24h"] == 1 and rows[5]["txn_count_5m"] == 1
    for row, (user, t) in zip(rows, labels, strict=True):
        expected = reference(events, user, t)
        assert {k: row[k] for k in expected} == pytest.approx(expected)


def test_scenario_labels_equal_the_python_reference(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    scenario = get_scenario("fraud")(3, start, 2.0, users=20, attack_every=300)
    events = [e for _t, e in itertools.islice(scenario, 3000)]
    rng = random.Random(4)
    first, last = events[0].event_time_ms, events[-1].event_time_ms
    labels = [(f"u{rng.randrange(21):05d}", rng.randrange(first - 60_000, last + 3 * 86_400_000)) for _ in range(300)]
    labels += [(e.user_id, e.event_time_ms + rng.choice((-1, 0, 1))) for e in rng.sample(events, 200)]
    rows = training_set(tmp_path, events, labels)
    assert sum(r["txn_count_5m"] is not None for r in rows) > 150
    assert sum(r["txn_count_5m"] is None for r in rows) > 50
    for row, (user, t) in zip(rows, labels, strict=True):
        expected = reference(events, user, t)
        got = {k: row[k] for k in expected}
        assert all(pit_sql.values_equal(got[k], v) for k, v in expected.items()), (user, t, got, expected)


def test_labels_without_entity_or_timestamp_are_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"user_id": ["u"], "ts": [1]}), tmp_path / "bad.parquet")
    con = pit_sql.connect(tmp_path)
    with pytest.raises(LivectxError, match="event_timestamp"):
        pit_sql.label_relation(con, f"read_parquet('{tmp_path / 'bad.parquet'}')", "user_id")
    with pytest.raises(LivectxError, match="unknown feature service"):
        pit_sql.service_groups("nope")
