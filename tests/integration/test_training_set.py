"""Training sets two ways: Feast's get_historical_features over the offline rows and the DuckDB recomputation
from raw events give identical values for every label and feature (real Feast, real DuckDB, real Parquet).

Feast runs against its own data dir and registry under ``tmp_path`` (the repo's real definitions, applied
with ``feast apply``): the shared ``<data dir>/offline`` holds files other tests and older engine versions
wrote, and Feast reads every file of a view's folder, so an isolated offline store is the only one whose
content this test controls. Everything it writes goes away with ``tmp_path``.
"""

from __future__ import annotations

import copy
import itertools
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from livectx_backtest.cli import backtest
from livectx_backtest.dataset import build_training_set, compare

from livectx.errors import LivectxError
from livectx.events import Event
from livectx.feast_store import apply_feature_repo
from livectx.features import pit_sql
from livectx.features.offline_rows import offline_rows
from livectx.settings import CoreSettings, Settings
from tests.example import get_scenario

SERVICE = "fraud_features"


@pytest.fixture
def isolated(settings: Settings, stack, tmp_path: Path) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    """Settings whose data dir (Feast registry + offline store) is under tmp_path; the environment
    variables Feast reads are restored afterwards."""
    local = copy.copy(settings)
    local.core = CoreSettings(data_dir=tmp_path / "data", feature_repo=settings.feature_repo)
    saved = dict(os.environ)
    apply_feature_repo(local)
    yield local
    os.environ.clear()
    os.environ.update(saved)


def _history(unique: str) -> list[tuple[str, Event]]:
    scenario = get_scenario("fraud")(5, datetime(2026, 1, 5, 23, 30, tzinfo=UTC), 1.5, users=15, attack_every=300)
    return [
        (topic, e.model_copy(update={"user_id": f"{unique}-{e.user_id}"}))
        for topic, e in itertools.islice(scenario, 2500)
    ]


def _write_offline(settings: Settings, events: list[tuple[str, Event]]) -> None:
    for n, group in enumerate(pit_sql.service_groups(SERVICE)):
        table = offline_rows(group, [e for t, e in events if t == group.source_topic], written_ms=1_000 + n)
        target = settings.offline_dir / group.name
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target / "rows.parquet")


def _labels(events: list[tuple[str, Event]], path: Path) -> None:
    """Random instants, and instants on, just before and just after events (the leakage edges)."""
    rng = random.Random(8)
    users = [*sorted({e.user_id for _t, e in events}), "nobody"]
    first, last = events[0][1].event_time_ms, events[-1][1].event_time_ms
    labels = [(rng.choice(users), rng.randrange(first - 60_000, last + 3 * 86_400_000)) for _ in range(300)]
    labels += [(e.user_id, e.event_time_ms + rng.choice((-1, 0, 1))) for _t, e in rng.sample(events, 300)]
    table = pa.table(
        {
            "user_id": [u for u, _ in labels],
            "event_timestamp": pa.array([t for _, t in labels], pa.timestamp("ms", tz="UTC")),
            "is_fraud": [rng.random() < 0.1 for _ in labels],
        }
    )
    pq.write_table(table, path)


def test_feast_and_recompute_agree_on_every_label_and_feature(isolated: Settings, unique: str, tmp_path: Path) -> None:
    events = _history(unique)
    pq.write_table(pit_sql.events_table(events), tmp_path / "events.parquet")
    _write_offline(isolated, events)
    _labels(events, tmp_path / "labels.parquet")
    out = tmp_path / "train.parquet"
    env = isolated.feast_environment()
    args = ["dataset", "--labels", str(tmp_path / "labels.parquet"), "--features", SERVICE, "--out", str(out)]
    result = CliRunner(env=env).invoke(backtest, [*args, "--source", str(tmp_path / "events.parquet"), "--via", "both"])
    assert result.exit_code == 0, result.output
    assert "recompute and Feast agree on all" in result.output
    train = pq.read_table(out)
    assert train.num_rows == 600
    assert train.column_names[:3] == ["user_id", "event_timestamp", "is_fraud"]
    assert pc.count(train["txn_count_5m"]).as_py() > 300  # most labels have a value...
    assert train["txn_count_5m"].null_count > 50  # ...some fall before the first event or beyond the TTL
    assert pc.max(train["distinct_ips_10m"]).as_py() >= 5  # the card-testing bursts are in there

    feast_only = tmp_path / "feast.parquet"
    result = CliRunner(env=env).invoke(backtest, [*args[:-1], str(feast_only), "--via", "feast"])
    assert result.exit_code == 0, result.output
    via_feast = pq.read_table(feast_only)
    assert via_feast.column_names == train.column_names
    columns = [c for g in pit_sql.service_groups(SERVICE) for c in pit_sql.output_columns(g)]
    assert compare(train, via_feast, columns, "user_id") == 600 * len(columns)


def test_a_corrupted_offline_row_fails_the_comparison_loudly(isolated: Settings, unique: str, tmp_path: Path) -> None:
    events = _history(unique)
    pq.write_table(pit_sql.events_table(events), tmp_path / "events.parquet")
    _write_offline(isolated, events)
    _labels(events, tmp_path / "labels.parquet")
    path = isolated.offline_dir / "user_txn_10m" / "rows.parquet"
    rows = pq.read_table(path)
    last = rows.num_rows - 1  # the latest row: the one later labels of its entity see
    ips = rows["distinct_ips_10m"].to_pylist()
    ips[last] += 1
    at = rows.schema.get_field_index("distinct_ips_10m")
    pq.write_table(rows.set_column(at, "distinct_ips_10m", pa.array(ips)), path)
    entity = rows["user_id"][last].as_py()
    with pytest.raises(LivectxError, match=rf"entity {entity} feature distinct_ips_10m .*recompute \d+, Feast \d+"):
        build_training_set(
            isolated,
            tmp_path / "labels.parquet",
            SERVICE,
            tmp_path / "train.parquet",
            source=str(tmp_path / "events.parquet"),
            via="both",
        )
