"""Replay: the archive first, then the broker's hot tail, as one gap-free, duplicate-free stream.

For every partition the archive's current files are read in offset order up to the archived end; the
broker supplies the rest (from the archived end to the end offsets at call time, or ``end``). Each
offset comes from exactly one tier. Before anything is yielded, the requested range is checked against
both tiers: positions neither holds raise :class:`~livectx.tier.coverage.TierGapError` naming the topic,
partition and range.

``by="offset"``: ``start``/``end`` are offsets (an int for every partition, or ``{partition: offset}``),
``[start, end)``. ``by="time"``: aware datetimes bounding the records' ``event_time``, ``[start, end)``;
archived files outside the range are skipped by their manifest event-time range, the hot tail is
scanned (event times need not follow offsets).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from livectx.errors import LivectxError
from livectx.settings import Settings
from livectx.tier.coverage import TierGapError, describe_gap, missing
from livectx.tier.hot import read_range, watermarks
from livectx.tier.layout import replay_schema
from livectx.tier.manifest import Manifest, ManifestEntry
from livectx.tier.merge import merge_by_event_time as merge_streams
from livectx.tier.storage import TierStorage, open_storage

if TYPE_CHECKING:
    import pyarrow as pa

OffsetBound = int | Mapping[int, int] | None


@dataclass
class ReplayStats:
    """Filled while the replay is consumed: where the records came from."""

    cold_records: int = 0
    hot_records: int = 0
    cold_files: int = 0


@dataclass(frozen=True)
class _Plan:
    topic: str
    partition: int
    entries: list[ManifestEntry]
    offsets: tuple[int, int] | None  # by offset: [start, end)
    times: tuple[int | None, int | None] | None  # by time: [start_ms, end_ms)
    hot: tuple[int, int]  # [from, to) read from the broker


def replay(
    settings: Settings,
    topics: Sequence[str],
    *,
    start: OffsetBound | datetime = None,
    end: OffsetBound | datetime = None,
    by: Literal["offset", "time"] = "offset",
    merge_by_event_time: bool = False,
    batch_size: int = 10_000,
    stats: ReplayStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches (columns: ``topic`` + the archive's) of ``topics``, cold tier then hot tail.

    Order: partition by partition in offset order, or with ``merge_by_event_time`` a k-way merge of the
    partitions by event time (each partition keeps its offset order).

    Raises:
        TierGapError: part of the range is in neither tier (checked before the first batch).
        LivectxError: a topic is neither archived nor on the broker; bad bounds.
    """
    if by not in ("offset", "time"):
        raise LivectxError(f"replay by {by!r}: use 'offset' or 'time'")
    storage = open_storage(settings)
    manifest = Manifest(storage)
    marks = watermarks(settings, topics)
    plans = [plan for topic in topics for plan in _plan_topic(manifest, marks, topic, start, end, by)]
    stats = stats if stats is not None else ReplayStats()
    streams = [_stream(settings, storage, plan, batch_size, stats) for plan in plans]
    if merge_by_event_time:
        return merge_streams(streams, batch_size)
    return (batch for stream in streams for batch in stream)


def _plan_topic(
    manifest: Manifest,
    marks: Mapping[tuple[str, int], tuple[int, int]],
    topic: str,
    start: OffsetBound | datetime,
    end: OffsetBound | datetime,
    by: str,
) -> list[_Plan]:
    entries = manifest.current(topic)
    partitions = sorted({p for (t, p) in marks if t == topic} | {e.partition for e in entries})
    if not partitions:
        raise LivectxError(f"topic {topic!r} is neither archived nor on the broker (`livectx tier status`)")
    if by == "time":
        start_ms, end_ms = _time_bound(start, "start"), _time_bound(end, "end")
    plans = []
    for partition in partitions:
        mine = [e for e in entries if e.partition == partition]
        cold_end = max((e.end_offset for e in mine), default=0)
        low, high = marks.get((topic, partition), (cold_end, cold_end))
        top = max(high, cold_end)
        if by == "offset":
            lo, hi = _offset_bound(start, partition, 0), min(_offset_bound(end, partition, top), top)
            chosen = [e for e in mine if e.last_offset >= lo and e.first_offset < hi]
            required = (lo, hi)
            plan = _Plan(topic, partition, chosen, (lo, hi), None, (max(lo, cold_end), hi))
        else:
            chosen = [
                e
                for e in mine
                if (start_ms is None or e.max_event_ms >= start_ms) and (end_ms is None or e.min_event_ms < end_ms)
            ]
            first = 0 if start_ms is None else (chosen[0].start_offset if chosen else cold_end)
            required = (first, top)
            plan = _Plan(topic, partition, chosen, None, (start_ms, end_ms), (cold_end, top))
        covered = [(e.start_offset, e.end_offset) for e in mine] + [(low, high)]
        gaps = missing(required, covered)
        if gaps:
            raise TierGapError(f"{describe_gap(topic, partition, gaps[0])}; replay a range from offset {gaps[-1][1]}")
        plans.append(plan)
    return plans


def _stream(
    settings: Settings, storage: TierStorage, plan: _Plan, batch_size: int, stats: ReplayStats
) -> Iterator[pa.RecordBatch]:
    """One partition's batches: its archived files, then the broker from the archived end."""
    import pyarrow.parquet as pq

    for entry in plan.entries:
        stats.cold_files += 1
        with storage.open(entry.path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_size):
                out = _select(plan, batch)
                if out.num_rows:
                    stats.cold_records += out.num_rows
                    yield out
    for table in read_range(settings, plan.topic, plan.partition, *plan.hot, batch_size=batch_size):
        for batch in table.to_batches():
            out = _select(plan, batch)
            if out.num_rows:
                stats.hot_records += out.num_rows
                yield out


def _select(plan: _Plan, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Keep the rows in the plan's range and put the topic in front."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if plan.offsets is not None:
        offsets = batch.column("offset").to_numpy()
        lo, hi = np.searchsorted(offsets, plan.offsets, side="left")
        if lo > 0 or hi < batch.num_rows:
            batch = batch.slice(int(lo), int(hi - lo))
    elif plan.times is not None and plan.times != (None, None):
        times = batch.column("event_time").cast("int64")
        start_ms, end_ms = plan.times
        mask = None
        if start_ms is not None:
            mask = pc.greater_equal(times, start_ms)
        if end_ms is not None:
            below = pc.less(times, end_ms)
            mask = below if mask is None else pc.and_(mask, below)
        batch = batch.filter(mask)
    topic = pa.array(np.full(batch.num_rows, plan.topic, dtype=object), pa.string())
    return pa.RecordBatch.from_arrays([topic, *batch.columns], schema=replay_schema())


def _offset_bound(bound: OffsetBound | datetime, partition: int, default: int) -> int:
    if bound is None:
        return default
    if isinstance(bound, (bool, datetime)):
        raise LivectxError("replay by offset takes offsets (an int or {partition: offset}), not datetimes")
    if isinstance(bound, int):
        return bound
    return bound.get(partition, default)


def _time_bound(bound: OffsetBound | datetime, name: str) -> int | None:
    if bound is None:
        return None
    if not isinstance(bound, datetime):
        raise LivectxError(f"replay by time takes datetimes; {name}={bound!r}")
    if bound.tzinfo is None:
        raise LivectxError(f"replay {name} time {bound.isoformat()} has no time zone: add one (e.g. +00:00)")
    return int(bound.timestamp() * 1000)
