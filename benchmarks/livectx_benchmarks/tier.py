"""``tier``: the cold tier's throughput against raw Kafka, and the training-set build over archived data.

1. Archive throughput: N fraud-scenario events are produced to a 3-partition topic; a raw confluent-kafka
   consumer reads them (the baseline, same topic, same run), then the archiver archives them into a
   private cold tier until its group committed the end (events/s from its first record to its last file
   committed: Parquet encoding, zstd, fsync, manifest entry, commit). ``archive_ratio`` = archiver / raw.
2. Cold replay: every archived record is replayed back as Arrow batches (``replay_events_per_s``).
3. Training sets: ``livectx_benchmarks.trainset.measure_trainset`` (1,000,000 raw events x 100,000 labels
   at scale 1) gives ``trainset_seconds``, ``trainset_peak_mb`` and ``feast_hist_seconds``.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from livectx_ingest.archive.worker import ArchiveWorker

from livectx.kafka import admin_client, require_reachable
from livectx.produce import produce_scenario
from livectx.settings import Settings
from livectx.tier.replay import ReplayStats, replay
from livectx.topics import TopicSpec, apply
from livectx_benchmarks.example import LOGINS, TRANSACTIONS
from livectx_benchmarks.kafka_throughput import _consume
from livectx_benchmarks.result import BenchResult

EVENTS = 100_000
TRAINSET_EVENTS = 1_000_000
TRAINSET_LABELS = 100_000
TRAINSET_FIGURES = ("trainset_seconds", "trainset_peak_mb", "feast_hist_seconds")


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    from livectx_benchmarks.trainset import measure_trainset

    require_reachable(settings)
    work = Path(tempfile.mkdtemp(prefix="livectx-bench-tier-"))
    try:
        archive = measure_archive(settings, scale=scale, work_dir=work)
        trainset = measure_trainset(
            settings,
            events=max(10_000, int(TRAINSET_EVENTS * scale)),
            labels=max(1_000, int(TRAINSET_LABELS * scale)),
            work_dir=work / "trainset",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = [k for k in TRAINSET_FIGURES if k not in trainset]
    if missing:
        raise RuntimeError(f"measure_trainset did not report {', '.join(missing)}")
    result = BenchResult("tier")
    result.figures = {**archive, **{k: float(v) for k, v in trainset.items()}}
    result.notes.append(
        f"{archive['events']:,.0f} fraud-scenario events on 3 partitions; archiver: file_max_records "
        f"{settings.tier.file_max_records:,}, row groups {settings.tier.row_group_records:,}, zstd, local disk; "
        "replay: cold tier only, Arrow batches of 10,000"
    )
    return result


def measure_archive(settings: Settings, *, scale: float, work_dir: Path) -> dict[str, float]:
    """Archive and cold-replay figures, with the raw-consume baseline of the same topic in the same run."""
    tag = uuid.uuid4().hex[:8]
    private = copy.copy(settings)
    private.tier = settings.tier.model_copy(update={"url": str(work_dir / "archive")})
    topic = f"livectx.bench.tier.{tag}"
    admin = admin_client(settings)
    apply(admin, [TopicSpec(topic, 3, {"retention.ms": "3600000"})])
    try:
        count = max(2_000, int(EVENTS * scale))
        produce_scenario(
            settings,
            "fraud",
            count=count,
            seed=7,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            topic_map={TRANSACTIONS: topic, LOGINS: topic},
        )
        raw_per_s = count / _consume(settings, topic, count)
        stats = ArchiveWorker(
            private, topics=[topic], consumer_group=f"livectx-bench-tier-{tag}", compact_interval_s=0
        ).run(until_caught_up=True)
        if stats.archived != count:
            raise RuntimeError(f"the archiver archived {stats.archived} of {count} events")
        replay_per_s, replayed = _replay(private, topic)
        if replayed != count:
            raise RuntimeError(f"replay returned {replayed} of {count} events")
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(30)
    return {
        "events": count,
        "archive_events_per_s": stats.events_per_s,
        "raw_consume_per_s": raw_per_s,
        "archive_ratio": stats.events_per_s / raw_per_s,
        "archive_files": stats.files,
        "archive_bytes_per_event": stats.bytes / count,
        "replay_events_per_s": replay_per_s,
    }


def _replay(settings: Settings, topic: str) -> tuple[float, int]:
    """Events/s of a full cold replay (every record in the archive, none left on the hot tail)."""
    stats = ReplayStats()
    started = time.perf_counter()
    rows = sum(batch.num_rows for batch in replay(settings, [topic], stats=stats))
    seconds = time.perf_counter() - started
    if stats.hot_records:
        raise RuntimeError(f"{stats.hot_records} records came from the broker: the cold replay was not cold")
    return rows / seconds, rows
