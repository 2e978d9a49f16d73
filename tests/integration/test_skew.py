"""The skew check: zero mismatches when the online store holds what the engine's semantics give, and it
finds one value changed behind its back (real Redis, Feast's layout, DuckDB over raw events)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from livectx_ingest.streaming.online_writer import FeastRedisWriter, Row

from livectx.cli.skew import skew
from livectx.events import Event
from livectx.features import pit_sql
from livectx.features.offline_rows import offline_rows
from livectx.features.online_reader import OnlineFeatureReader, feature_store_identity
from livectx.features.skew import check_skew
from livectx.redis_client import redis_client
from livectx.settings import Settings
from tests.example import get_scenario

SERVICE = "fraud_features"


def _events(unique: str) -> list[tuple[str, Event]]:
    scenario = get_scenario("fraud")(9, datetime(2026, 2, 1, tzinfo=UTC), 3.0, users=12, attack_every=200)
    return [
        (topic, e.model_copy(update={"user_id": f"{unique}-{e.user_id}"}))
        for topic, e in itertools.islice(scenario, 1500)
    ]


@pytest.fixture
def online(settings: Settings, stack, unique: str, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:  # type: ignore[no-untyped-def]
    """Raw events in Parquet, and each entity's final row of every group written online as the engine does."""
    events = _events(unique)
    pq.write_table(pit_sql.events_table(events), tmp_path / "events.parquet")
    client = redis_client(settings)
    project, eksv = feature_store_identity(settings.feature_repo)
    keys = set()
    for group in pit_sql.service_groups(SERVICE):
        table = offline_rows(group, [e for t, e in events if t == group.source_topic], written_ms=1)
        final = {r[group.entity_key]: r for r in table.to_pylist()}  # the last row per entity
        writer = FeastRedisWriter(client, project, group, eksv)
        rows = [
            Row(e, r["window_start_ms"], r["window_end_ms"], r[group.event_time_field], r["source_offset"], True,
                {f.name: r[f.name] for f in group.features})
            for e, r in final.items()
        ]  # fmt: skip
        assert writer.write(rows, written_ms=1) == len(rows)
        keys |= {writer.redis_key(e) for e in final}
    yield tmp_path / "events.parquet", sorted({e.user_id for _t, e in events})
    client.delete(*keys)


def test_healthy_online_store_has_no_skew_and_a_changed_value_is_found(settings: Settings, online, tmp_path) -> None:  # type: ignore[no-untyped-def]
    events_path, users = online
    con = pit_sql.connect(tmp_path)
    sources = pit_sql.open_sources(con, settings, str(events_path))
    reader = OnlineFeatureReader.from_settings(settings)
    now_ms = int(datetime(2026, 2, 1, 2, tzinfo=UTC).timestamp() * 1000)
    report = check_skew(con, reader, SERVICE, sources, now_ms=now_ms, sample=len(users), seed=1)
    assert report.entities == len(users) == 12
    assert report.checked >= 5 * len(users) - 2 and report.mismatches == []

    # Change one value behind the engine's back: the check names that entity and feature, nothing else.
    victim = users[3]
    layout = reader.layouts["user_txn_1h"]
    served = reader.read([victim], ["user_txn_1h:txn_amount_sum_1h"])["txn_amount_sum_1h"][0]
    redis_client(settings).hset(
        layout.redis_key(victim), layout.fields["txn_amount_sum_1h"], layout.encode("x", served + 1)
    )
    report = check_skew(con, reader, SERVICE, sources, now_ms=now_ms, sample=len(users), seed=1)
    assert [(m.entity, m.group, m.feature, m.kind) for m in report.mismatches] == [
        (victim, "user_txn_1h", "txn_amount_sum_1h", "value")
    ]
    assert report.mismatches[0].online == pytest.approx(served + 1)
    assert report.mismatches[0].offline == pytest.approx(served)

    result = CliRunner().invoke(
        skew, ["--service", SERVICE, "--source", str(events_path), "--sample", "100", "--json"], obj={}
    )
    assert result.exit_code == 1, result.output
    mismatches = json.loads(result.output)["mismatches"]
    assert [(m["entity"], m["feature"]) for m in mismatches] == [(victim, "txn_amount_sum_1h")]


def test_a_missing_online_row_within_ttl_is_reported(settings: Settings, online, tmp_path) -> None:  # type: ignore[no-untyped-def]
    events_path, users = online
    con = pit_sql.connect(tmp_path)
    sources = pit_sql.open_sources(con, settings, str(events_path))
    reader = OnlineFeatureReader.from_settings(settings)
    layout = reader.layouts["user_txn_5m"]
    redis_client(settings).hdel(layout.redis_key(users[0]), layout.ts_field)  # Feast reads no row without _ts
    recent = int(datetime(2026, 2, 1, 2, tzinfo=UTC).timestamp() * 1000)
    report = check_skew(con, reader, SERVICE, sources, now_ms=recent, sample=len(users))
    assert [(m.entity, m.group, m.kind) for m in report.mismatches] == [(users[0], "user_txn_5m", "missing")]
    later = recent + 3 * 86_400_000  # beyond the TTL an absent row is expected, not skew
    assert check_skew(con, reader, SERVICE, sources, now_ms=later, sample=len(users)).mismatches == []
