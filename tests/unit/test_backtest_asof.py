"""The backtest's as-of features (the engine's window state, rows read right after each scored event) equal
the batch recomputation reference (:func:`livectx.features.point_in_time.features_as_of`) on every payment
of the example's fraud decision, and records that do not decode are counted by reason, not fed to the
windows."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from livectx_agents.example_fraud import model_row
from livectx_backtest.asof import AsOfFeatures, model_groups

from livectx import serde
from livectx.events import Event
from livectx.features.point_in_time import features_as_of
from livectx.tier.layout import archive_schema
from tests.example import FEATURE_SERVICES, FRAUD_MODEL_FEATURES, REPO, Click, Transaction, get_scenario, group_named

DECISION = REPO.decision("fraud_features")

START = datetime(2026, 1, 7, 23, 50, tzinfo=UTC)  # crosses midnight: the 24h window closes mid-history


def _batch(records: list[tuple[bytes | None, list[tuple[str, bytes]]]]) -> pa.RecordBatch:
    headers = [[{"key": k, "value": v} for k, v in h] or None for _value, h in records]
    return pa.RecordBatch.from_pydict(
        {
            "offset": pa.array(range(len(records)), pa.int64()),
            "key": pa.array([b"k"] * len(records), pa.binary()),
            "value": pa.array([v for v, _h in records], pa.binary()),
            "headers": pa.array(headers, archive_schema().field("headers").type),
        }
    )


def test_rows_equal_the_batch_recomputation_for_every_payment() -> None:
    # Few users and a high attack rate: long per-user histories, bursts, failed logins.
    events = [e for _t, e in itertools.islice(get_scenario("fraud")(11, START, 20.0, users=40, attack_every=400), 4000)]
    asof = AsOfFeatures(DECISION, FRAUD_MODEL_FEATURES)
    batch = _batch([(v, h) for _k, v, h in (serde.encode(e) for e in events)])
    asof.feed(batch.slice(0, 1500), 0)
    asof.feed(batch.slice(1500), 1500)
    assert asof.columnar_batches == 2  # both batches took the engine's batch path
    groups = [group_named(g) for g in FEATURE_SERVICES["fraud_features"]]
    expected = [
        model_row(values, e.amount) for e, values in features_as_of(events, groups) if isinstance(e, Transaction)
    ]
    assert asof.scored.rows == expected
    payments = [e for e in events if isinstance(e, Transaction)]
    assert asof.scored.id == [e.txn_id for e in payments] and asof.scored.entity == [e.user_id for e in payments]
    assert sum(1 for e in payments if e.is_fraud) == sum(asof.scored.label) > 100
    assert max(r[FRAUD_MODEL_FEATURES.index("distinct_ips_10m")] for r in expected) >= 10
    assert max(r[FRAUD_MODEL_FEATURES.index("login_failures_5m")] for r in expected) >= 1
    assert asof.scored.position == [i for i, e in enumerate(events) if isinstance(e, Transaction)]


def test_bad_records_are_counted_by_reason_and_other_types_ignored() -> None:
    good = next(e for _t, e in get_scenario("fraud")(1, START, 200.0) if isinstance(e, Transaction))
    click = Click(event_time=START, click_id="c1", user_id="u1", session_id="s", item_id="i", page="p")
    _k, value, headers = serde.encode(good)
    asof = AsOfFeatures(DECISION, FRAUD_MODEL_FEATURES)
    asof.feed(
        _batch(
            [
                (value, headers),
                (b"{not json", headers),
                (value, []),
                (value, [("livectx-schema", b"mystery.v1")]),
                (None, headers),
                (serde.encode(click)[1], serde.encode(click)[2]),
            ]
        ),
        0,
    )
    assert len(asof.scored) == 1 and asof.counts.records == 6
    assert asof.counts.ignored == {"click": 1}
    bad = dict(asof.counts.bad)
    assert bad.pop("no livectx-schema header") == 1 and bad.pop("unknown schema mystery.v1") == 1
    assert sorted(bad) == [
        "empty value (null record) where a JSON event was expected",
        next(k for k in bad if k.startswith("not JSON")),
    ]


def test_groups_keep_only_the_features_a_model_reads() -> None:
    groups = model_groups("fraud_features", ("txn_amount_sum_1h", "login_failures_5m"))
    assert [(g.name, [f.name for f in g.features]) for g in groups] == [
        ("user_txn_1h", ["txn_amount_sum_1h"]),
        ("user_login_5m", ["login_failures_5m"]),
    ]


def test_an_unlabelled_decision_scores_the_same_rows_without_labels() -> None:
    import dataclasses

    events = [e for _t, e in itertools.islice(get_scenario("fraud")(3, START, 200.0), 600)]
    labelled, unlabelled = (
        AsOfFeatures(DECISION, FRAUD_MODEL_FEATURES),
        AsOfFeatures(dataclasses.replace(DECISION, label=None), FRAUD_MODEL_FEATURES),
    )
    labelled.feed_events(events)
    unlabelled.feed_events(events)
    assert unlabelled.scored.rows == labelled.scored.rows and len(unlabelled.scored) > 100
    assert "label" not in unlabelled.scored.arrays() and "label" in labelled.scored.arrays()


def _disordered(seed: int, count: int) -> list[Event]:
    """The fraud scenario with a tenth of its events moved back in time: within grace, past a window's
    close, and past every window (late), so the batch path sends entities event by event mid-batch."""
    rng = random.Random(seed)
    events = [
        e for _t, e in itertools.islice(get_scenario("fraud")(seed, START, 30.0, users=60, attack_every=300), count)
    ]
    moved = []
    for e in events:
        if rng.random() < 0.1:
            back = timedelta(seconds=rng.choice([1, 20, 90, 400, 4000, 90_000]))
            e = e.model_copy(update={"event_time": e.event_time - back})
        moved.append(e)
    return moved


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_the_batch_path_equals_the_per_event_path_on_out_of_order_batches(seed: int) -> None:
    events = _disordered(seed, 5000)
    records = [(v, h) for _k, v, h in (serde.encode(e) for e in events)]
    records[2600] = (b"{not json", records[2600][1])  # that batch goes event by event, between batch-path ones
    batch = _batch(records)
    rng = random.Random(seed)
    cuts = sorted({0, len(records), *(rng.randrange(1, len(records)) for _ in range(6))})
    batched, one_by_one = (
        AsOfFeatures(DECISION, FRAUD_MODEL_FEATURES),
        AsOfFeatures(DECISION, FRAUD_MODEL_FEATURES, batches=False),
    )
    for asof in (batched, one_by_one):  # a TTL shorter than users' gaps: logins read as missing, sometimes
        asof.ttl_ms = [20_000] * len(asof.ttl_ms)
    for lo, hi in itertools.pairwise(cuts):
        batched.feed(batch.slice(lo, hi - lo), lo)
        one_by_one.feed(batch.slice(lo, hi - lo), lo)
    assert 0 < batched.columnar_batches < len(cuts) - 1 and one_by_one.columnar_batches == 0
    assert batched.counts.late > 0 and batched.counts == one_by_one.counts
    mine, theirs = batched.scored, one_by_one.scored
    assert (mine.position, mine.event_ms, mine.id, mine.entity, mine.label) == (
        theirs.position, theirs.event_ms, theirs.id, theirs.entity, theirs.label
    )  # fmt: skip
    assert [[repr(v) for v in row] for row in mine.rows] == [[repr(v) for v in row] for row in theirs.rows]
    assert max(r[FRAUD_MODEL_FEATURES.index("login_failures_5m")] for r in mine.rows) >= 1


def test_batch_values_read_as_model_row_reads_them() -> None:
    """``float(v or 0.0)``: -0.0 reads 0.0 (its sign gone, as model_row's ``or`` drops it), NaN stays NaN."""
    from livectx_backtest.asof_batch import _floats

    from livectx.models.rows import model_row as product_row

    values = [-0.0, 2.5, float("nan"), 0]
    assert [repr(v) for v in _floats(pa.array(values)).tolist()] == ["0.0", "2.5", "nan", "0.0"]
    named = {f"f{i}": v for i, v in enumerate(values)}
    assert [repr(v) for v in product_row(named, [], list(named))] == ["0.0", "2.5", "nan", "0.0"]
