"""The archiver against the real broker: archive, drop the hot data, replay it all back exactly once;
gaps are reported; ``kill -9`` at each step of writing a file loses and duplicates nothing; compaction
changes no reader-visible record."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import TopicPartition
from livectx_ingest.archive.worker import ArchiveWorker

from livectx import serde
from livectx.kafka import admin_client, producer
from livectx.settings import Settings
from livectx.tier.compaction import compact
from livectx.tier.coverage import TierGapError
from livectx.tier.manifest import Manifest
from livectx.tier.replay import ReplayStats, replay
from livectx.tier.status import tier_status
from livectx.tier.storage import open_storage
from tests.example import Transaction
from tests.integration.kafka_helpers import create_topic

START = datetime(2024, 3, 1, 23, 58, tzinfo=UTC)  # the records cross midnight: two event dates


def tier_settings(settings: Settings, root: Path, **tier: object) -> Settings:
    copied = copy.copy(settings)
    copied.tier = settings.tier.model_copy(update={"url": str(root), **tier})
    return copied


def produce(settings: Settings, topic: str, count: int, partitions: int = 1, first: int = 0) -> None:
    """``count`` transactions (one every 200 ms of event time: midnight at i=600), spread over ``partitions`` by key."""
    p = producer(settings)
    for i in range(first, first + count):
        event = Transaction(
            event_time=START + timedelta(milliseconds=200 * i),
            txn_id=f"t{i}",
            user_id=f"u{i % 7}",
            card_id=f"c{i % 5}",
            merchant_id=f"m{i % 3}",
            amount=float(i),
            currency="EUR",
            ip="10.0.0.1",
            country="DE",
        )
        key, value, headers = serde.encode(event)
        p.produce(topic, key=key, value=value, headers=headers, partition=i % partitions)
    assert p.flush(30) == 0


def replayed(settings: Settings, topic: str, **options: object) -> pa.Table:
    return pa.Table.from_batches(list(replay(settings, [topic], **options)))  # type: ignore[arg-type]


def archive(settings: Settings, topic: str, group: str) -> None:
    ArchiveWorker(settings, topics=[topic], consumer_group=group, compact_interval_s=0).run(until_caught_up=True)


def test_archive_then_drop_hot_data_then_replay_everything_once(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path, file_max_records=150)
    topic = create_topic(settings, f"test.archive.{unique}", partitions=2)
    produce(settings, topic, 1000, partitions=2)
    archive(s, topic, f"g-{unique}")

    # Drop the hot data: the broker keeps only offsets >= 400 of each partition.
    admin = admin_client(settings)  # held: the futures need a live client
    deleted = admin.delete_records([TopicPartition(topic, p, 400) for p in (0, 1)])
    assert all(f.result(30).low_watermark == 400 for f in deleted.values())
    produce(settings, topic, 200, partitions=2, first=1000)  # a hot tail the archive has not seen

    stats = ReplayStats()
    table = replayed(s, topic, stats=stats)
    assert (stats.cold_records, stats.hot_records) == (1000, 200)
    for partition in (0, 1):
        offsets = table.filter(pa.compute.equal(table["partition"], partition))["offset"].to_pylist()
        assert offsets == list(range(600))  # every offset once, in order, cold then hot
    amounts = sorted(int(serde.decode(Transaction, v).amount) for v in table["value"].to_pylist())
    assert amounts == list(range(1200))

    rows = tier_status(s, [topic])
    assert [(r.partition, r.hot_low, r.hot_high, r.cold_first, r.cold_last, r.gaps) for r in rows] == [
        (0, 400, 600, 0, 499, []),
        (1, 400, 600, 0, 499, []),
    ]
    # One event date per file, and both dates present.
    entries = Manifest(open_storage(s)).current(topic)
    assert {e.date for e in entries} == {"2024-03-01", "2024-03-02"}
    assert all(e.path.startswith(f"{topic}/date={e.date}/partition={e.partition}/") for e in entries)


def test_records_deleted_before_archiving_are_a_reported_gap(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path)
    topic = create_topic(settings, f"test.archive-gap.{unique}")
    produce(settings, topic, 300)
    archive(s, topic, f"g-{unique}")
    produce(settings, topic, 300, first=300)
    # Offsets 300..449 vanish before the archiver sees them.
    admin = admin_client(settings)  # held: the futures need a live client
    for future in admin.delete_records([TopicPartition(topic, 0, 450)]).values():
        future.result(30)
    worker = ArchiveWorker(s, topics=[topic], consumer_group=f"g-{unique}", compact_interval_s=0)
    stats = worker.run(until_caught_up=True)
    assert stats.gaps == [(topic, 0, 300, 450)]

    (row,) = tier_status(s, [topic])
    assert row.gaps == [(300, 450)] and (row.cold_first, row.cold_last) == (0, 599)
    with pytest.raises(TierGapError, match=r"\[0\] offsets 300\.\.449"):
        replay(s, [topic])
    # Past the gap, replay works.
    assert replayed(s, topic, start=450)["offset"].to_pylist() == list(range(450, 600))


def _archiver(settings: Settings, root: Path, topic: str, group: str, fault: str | None) -> int:
    env = {
        **os.environ,
        "LIVECTX_TIER_URL": str(root),
        "LIVECTX_TIER_FILE_MAX_RECORDS": "100",
        "LIVECTX_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        # The killed member stays in the group until its session expires; the broker's minimum keeps the
        # restart's join short instead of the default 45 s.
        "LIVECTX_KAFKA_CLIENT_OPTIONS": '{"session.timeout.ms": 6000}',
    }
    env.pop("LIVECTX_ARCHIVE_FAULT", None)
    if fault:
        env["LIVECTX_ARCHIVE_FAULT"] = fault
    command = [sys.executable, "-m", "livectx", "ingest", "run", "archive", "--topic", topic, "--group", group]
    return subprocess.run([*command, "--until-caught-up"], env=env, capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("fault", ["during-write:5", "after-data:3", "after-manifest:3"])
def test_kill_9_while_writing_a_file_then_restart_loses_and_duplicates_nothing(  # type: ignore[no-untyped-def]
    stack, settings, unique, tmp_path, fault
) -> None:
    s = tier_settings(settings, tmp_path, file_max_records=100)
    topic = create_topic(settings, f"test.archive-kill.{unique}")
    group = f"g-{unique}"
    produce(settings, topic, 450)
    assert _archiver(settings, tmp_path, topic, group, fault) == -9  # SIGKILLed at the third file
    manifest = Manifest(open_storage(s))
    listed = sum(e.records for e in manifest.current(topic))
    # The third file is listed only once its entry is written (put 5 = the third data file).
    assert listed == (300 if fault == "after-manifest:3" else 200)
    assert _archiver(settings, tmp_path, topic, group, None) == 0

    entries = manifest.current(topic)
    assert sum(e.records for e in entries) == 450
    assert replayed(s, topic)["offset"].to_pylist() == list(range(450))
    (row,) = tier_status(s, [topic])
    assert row.gaps == [] and (row.cold_first, row.cold_last) == (0, 449)
    # Leftovers of the crash (half a file, an unlisted file) are vacuumed; listed files stay.
    manifest.vacuum(topic, orphan_grace_s=0)
    files = sorted(p for p in manifest.storage.find(topic))
    assert files == sorted(e.path for e in entries)


def test_compaction_merges_small_files_and_readers_see_the_same_records(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path, file_max_records=40, compact_below_records=100)
    topic = create_topic(settings, f"test.archive-compact.{unique}", partitions=2)
    produce(settings, topic, 800, partitions=2)
    archive(s, topic, f"g-{unique}")
    manifest = Manifest(open_storage(s))
    before_entries = manifest.current(topic)
    before = replayed(s, topic)

    merged = tier_settings(settings, tmp_path, file_max_records=200, compact_below_records=100)
    result = compact(merged, [topic], orphan_grace_s=0)
    after_entries = manifest.current(topic)
    assert result.written_files > 0 and len(after_entries) < len(before_entries)
    assert all(e.records <= 200 for e in after_entries)
    assert len({e.date for e in after_entries}) == 2  # never merged across dates
    assert replayed(s, topic).equals(before)
    # The replaced files and entries are gone; only the current files remain.
    assert sorted(manifest.storage.find(topic)) == sorted(e.path for e in after_entries)
    assert compact(merged, [topic], orphan_grace_s=0).written_files == 0  # idempotent
