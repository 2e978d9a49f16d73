"""The streaming feature engine against the real broker, Redis and Feast (worker runs as a real process)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from livectx_ingest.streaming.late import LATE_GROUP

from livectx import dead_letter
from livectx.features.offline_rows import offline_rows
from livectx.features.recompute import late_events
from livectx.kafka import admin_client
from livectx.offsets import end_offsets, group_lag, wait_for_caught_up
from livectx.settings import Settings
from livectx.stack.process import wait_until
from tests.example import group_named

from .engine_helpers import (
    TXN_GROUPS,
    late_user_story,
    online_mismatches,
    produce,
    run_worker_to_completion,
    scenario_transactions,
    start_worker,
    worker_command,
)
from .kafka_helpers import create_topic, read_all

POISON = [b"{not json", b'{"event_time": "2026-03-10T00:00:00Z", "amount": "ten"}']


def _topics(settings: Settings, unique: str, partitions: int = 3) -> tuple[str, str, str]:
    return (
        create_topic(settings, f"test.{unique}.txn", partitions),
        create_topic(settings, f"test.{unique}.dlq"),
        create_topic(settings, f"test.{unique}.late"),
    )


@pytest.mark.parametrize("offline", [True, False], ids=["columnar+offline", "columnar"])
def test_online_values_equal_batch_recomputation_with_poison_and_late_events(
    settings: Settings,
    feature_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    offline: bool,
) -> None:
    """With or without the offline copy, batches go the columnar path (poisoned and out-of-order parts
    falling back per record and per entity): same results, and the offline copy holds, row for row, what
    the reference (:func:`~livectx.features.offline_rows.offline_rows`) says."""
    topic, dlq, late = _topics(settings, unique)
    events = scenario_transactions(unique, 2500)
    story, within, beyond = late_user_story(f"{unique}-late")
    produce(settings, topic, events[:700])
    produce(settings, topic, POISON)
    produce(settings, topic, events[700:] + story + [beyond])
    all_events = events + story + [beyond]

    command = worker_command(f"test-{unique}", topic, dlq, late)
    run_worker_to_completion(command if offline else [*command, "--no-offline"], tmp_path / "worker.log")

    assert online_mismatches(feature_store, TXN_GROUPS, all_events) == []
    columnar = _figure(tmp_path / "worker.log", "events applied as columns")
    assert columnar > len(all_events) // 2
    if offline:
        assert _offline_mismatches(settings, TXN_GROUPS, all_events) == []
    lag = group_lag(settings, f"test-{unique}")
    assert {t for t, *_ in lag} == {topic} and all(committed == end for _, _, committed, end in lag)

    letters = read_all(settings, dlq, expected=2)
    assert sorted(m.value() for m in letters) == sorted(POISON)
    reasons = [dict(m.headers())[dead_letter.REASON].decode() for m in letters]
    assert any(r.startswith("not JSON") for r in reasons) and any("schema violation" in r for r in reasons)

    # Beyond grace: in the late-events topic (for exactly the groups whose windows had all closed).
    expected_late = {(g.name, e.txn_id) for g in TXN_GROUPS for e in late_events(g, all_events)}
    assert ("user_txn_5m", beyond.txn_id) in expected_late
    late_records = read_all(settings, late, expected=len(expected_late))
    got_late = {(dict(m.headers())[LATE_GROUP].decode(), json.loads(m.value())["txn_id"]) for m in late_records}
    assert got_late == expected_late

    if not offline:
        return  # the window history below is part of the offline copy
    # Within grace: the closed-but-in-grace window [t, t+5m) was updated (the window history shows it).
    five = group_named("user_txn_5m")
    rows = pq.read_table(settings.data_dir / "windows" / five.name).to_pylist()
    window_start = within.event_time_ms - within.event_time_ms % five.window.size_ms
    mine = [r for r in rows if r["user_id"] == within.user_id and r["window_start_ms"] == window_start]
    assert max(mine, key=lambda r: r["source_offset"])["txn_count_5m"] == 2  # the 4:50 payment + the late 4:55


@pytest.mark.parametrize("offline", [True, False], ids=["columnar+offline", "columnar"])
def test_kill_minus_nine_at_random_points_then_finish_equals_recomputation(
    settings: Settings,
    feature_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    offline: bool,
) -> None:
    """SIGKILL mid-batch, after the side outputs but before the Redis commit, and after the Redis commit
    but before the Kafka offset mirror, at points drawn at random; then a clean run: no loss, no double
    count, and the offline copy holds each processed event exactly once."""
    topic, dlq, late = _topics(settings, unique)
    events = scenario_transactions(unique, 10_000, seed=9)  # ~8,000 payments
    group = f"test-{unique}"
    command = [*worker_command(group, topic, dlq, late), "--max-batch", "150", "--commit-interval", "0.001"]
    command += ["--columnar-min", "1"]  # every batch goes columnar, whatever its size
    if not offline:
        command.append("--no-offline")
    rng = random.Random(unique)
    crashes = [f"event:{rng.randint(50, 300)}", "before-commit:1", "after-commit:1"]
    crashes += [rng.choice([f"event:{rng.randint(50, 300)}", "before-commit:1", "after-commit:1"]) for _ in range(4)]
    # Each crashed run gets a fresh chunk of the stream (in order), so its crash point is always reached
    # however much the previous runs committed (checkpoint spacing adapts to load).
    chunk = len(events) // (len(crashes) + 1)
    for n, crash in enumerate(crashes):
        produce(settings, topic, events[n * chunk : (n + 1) * chunk])
        worker = subprocess.Popen(
            command,
            stdout=(tmp_path / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "LIVECTX_ENGINE_CRASH": crash},
        )
        assert worker.wait(120) == -signal.SIGKILL, f"{crash}: the worker was not killed there"
    produce(settings, topic, events[len(crashes) * chunk :])
    run_worker_to_completion(command, tmp_path / "worker.log")
    assert online_mismatches(feature_store, TXN_GROUPS, events) == []
    assert _figure(tmp_path / "worker.log", "events applied as columns") > 0
    if not offline:
        return
    # The offline copy: exactly one row per payment per group, whatever the crashes re-processed.
    for g in TXN_GROUPS:
        rows = pq.read_table(settings.offline_dir / g.name, filters=[("user_id", "in", _users(events))])
        offsets = rows.column("source_offset").to_pylist()
        partitions = rows.column("source_partition").to_pylist()
        assert len(offsets) == len(events) and len(set(zip(partitions, offsets, strict=True))) == len(events)


def _offline_mismatches(settings: Settings, groups: tuple, events: list) -> list[str]:  # type: ignore[type-arg]
    """Every offline row of ``events``' users that differs from the reference's, user by user in offset order
    (one user's payments are one partition's, in the order produced)."""
    compared = ("event_timestamp", "window_start_ms", "window_end_ms")
    problems = []
    for group in groups:
        table = pq.read_table(settings.offline_dir / group.name, filters=[("user_id", "in", _users(events))])
        got: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
        for row in sorted(table.to_pylist(), key=lambda r: (r["source_partition"], r["source_offset"])):
            values = tuple(repr(row[k]) for k in (*compared, *(f.name for f in group.features)))
            got.setdefault(row[group.entity_key], []).append(values)
        want: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
        for row in offline_rows(group, events, written_ms=0).to_pylist():
            values = tuple(repr(row[k]) for k in (*compared, *(f.name for f in group.features)))
            want.setdefault(row[group.entity_key], []).append(values)
        problems += [f"{group.name} {user}" for user in want if got.get(user) != want[user]]
    return problems


def _figure(log: Path, label: str) -> int:
    """A count from the worker's closing table (``label │ 1,234``)."""
    found = re.findall(rf"{label}\W+([\d,]+)", log.read_text())
    assert found, f"{label!r} not in the worker's output"
    return int(found[-1].replace(",", ""))


def _users(events: list) -> list[str]:  # type: ignore[type-arg]
    return sorted({e.user_id for e in events})


def test_two_workers_in_one_group_equal_the_recomputation(
    settings: Settings,
    feature_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Both workers hold partitions before the first event exists, so each processes its share; together
    they process every event once and the online values equal the recomputation."""
    topic, dlq, late = _topics(settings, unique, partitions=4)
    events = scenario_transactions(unique, 4000, seed=13)
    group = f"test-{unique}"
    logs = [tmp_path / f"w{n}.log" for n in range(2)]
    workers = [
        start_worker([c for c in worker_command(group, topic, dlq, late, str(n)) if c != "--until-caught-up"], log)
        for n, log in enumerate(logs)
    ]
    try:
        admin = admin_client(settings)

        def both_hold_partitions() -> bool:
            found = admin.describe_consumer_groups([group])[group]
            try:
                members = found.result(10).members
            except Exception:  # the group does not exist until the first worker joins
                return False
            return len(members) == 2 and all(m.assignment.topic_partitions for m in members)

        assert wait_until(both_hold_partitions, 90), "the two workers did not share the partitions"
        produce(settings, topic, events)
        assert wait_for_caught_up(settings, group, end_offsets(settings, [topic]), timeout_s=180)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    for worker, log in zip(workers, logs, strict=True):
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert online_mismatches(feature_store, TXN_GROUPS, events) == []
    processed = [_figure(log, "events processed") for log in logs]
    assert all(n > 0 for n in processed) and sum(processed) == len(events), processed
