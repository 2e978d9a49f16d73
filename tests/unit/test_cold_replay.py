"""The cold-tier head of a rebuild: which archived ranges lead up to the log start, and the archive read as a
consumer the engine runs on (record order, partition ends as positions, then stop)."""

from __future__ import annotations

import pyarrow as pa
from livectx_ingest.streaming.cold_replay import ArchiveConsumer, cold_ranges

from livectx.tier.layout import replay_schema
from livectx.tier.manifest import ManifestEntry


def _entry(partition: int, start: int, end: int, topic: str = "t") -> ManifestEntry:
    return ManifestEntry(
        topic=topic, partition=partition, path=f"{partition}-{start}", date="2026-01-01", first_offset=start,
        last_offset=end - 1, start_offset=start, end_offset=end, records=end - start, min_event_ms=0,
        max_event_ms=0, min_timestamp_ms=0, max_timestamp_ms=0, bytes=0, created_ns=0, writer="w",
    )  # fmt: skip


def test_the_archived_run_up_to_the_log_start_is_replayed_and_gaps_are_named() -> None:
    entries = [_entry(0, 0, 100), _entry(0, 100, 250), _entry(1, 0, 40), _entry(1, 60, 90), _entry(2, 0, 10)]
    lows = {("t", 0): 200, ("t", 1): 90, ("t", 2): 50, ("t", 3): 0}
    ranges, warnings = cold_ranges(entries, lows)
    # p0: archived past its log start, read up to it only; p1: a gap at 40-59, so only 60-89; p2: the archive
    # ends before the log starts (nothing joins them); p3: the log still starts at 0.
    assert ranges == {("t", 0): (0, 200), ("t", 1): (60, 90)}
    assert len(warnings) == 2
    assert "t[1]: offsets 0-59 are in neither" in warnings[0]
    assert "t[2]: the log starts at offset 50 and the cold tier does not reach it" in warnings[1]


def _batch(partition: int, offsets: list[int]) -> pa.RecordBatch:
    rows = [
        {"topic": "t", "partition": partition, "offset": o, "timestamp": 1_000 + o, "event_time": 1_000 + o,
         "key": b"k", "value": b"{}", "headers": [{"key": "h", "value": b"v"}]}
        for o in offsets
    ]  # fmt: skip
    return pa.RecordBatch.from_pylist(rows, schema=replay_schema())


def test_the_archive_consumer_yields_records_then_partition_ends_then_stops_the_engine() -> None:
    stopped: list[bool] = []
    assigned: list[tuple[str, int]] = []
    consumer = ArchiveConsumer(iter([_batch(0, [0, 1, 2]), _batch(1, [5, 6])]), {("t", 0): 4, ("t", 1): 7})
    consumer.on_exhausted = lambda: stopped.append(True)
    consumer.subscribe(["t"], lambda _c, parts: assigned.extend((p.topic, p.partition) for p in parts), print)
    assert assigned == [("t", 0), ("t", 1)]
    first = consumer.consume(4)
    assert [(m.partition(), m.offset()) for m in first] == [(0, 0), (0, 1), (0, 2), (1, 5)]
    assert first[0].timestamp() == (1, 1_000) and first[0].headers() == [("h", b"v")] and first[0].error() is None
    rest = consumer.consume(10)
    assert [(m.partition(), m.offset()) for m in rest] == [(1, 6), (0, 4), (1, 7)]
    assert rest[0].error() is None and rest[1].error().code() == -191  # the end: the engine's position
    assert not stopped
    assert consumer.consume(10) == [] and stopped == [True]
