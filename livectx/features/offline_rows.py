"""The offline feature rows: what Feast's offline store holds, one row per event (the reference).

For every valid event of a group's type, in consumption order, the row is the entity's online row right
after that event: the window :func:`~livectx.features.recompute.online_window` shows for the entity's
newest event time, aggregated over the entity's events in it. These rows are the Feast ``FileSource`` of
each ``FeatureView`` (``<data dir>/offline/<group>/*.parquet``), so ``get_historical_features`` returns,
for a label (entity, t), the last row with ``event_timestamp <= t`` (ties: the latest ``created_timestamp``,
i.e. the latest write) within the view's TTL.

This module is the reference the streaming engine's offline output is tested against, so it is written to
be obviously correct: it keeps, per entity, the events that can still be in a window (window starts never
move back, so older events are dropped for good) and aggregates them with the very
:func:`~livectx.features.recompute.aggregate` the batch recomputation uses, in consumption order. The cost
is linear in events times events per window, never quadratic in an entity's history.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from livectx.events import Event
from livectx.features.recompute import aggregate, online_window
from livectx.features.spec import FeatureGroup

#: Columns every offline file starts with, before the group's features and freshness columns.
KEY_COLUMNS = (
    "event_timestamp",
    "created_timestamp",
    "window_start_ms",
    "window_end_ms",
    "source_partition",
    "source_offset",
    "written_ms",
)


def offline_schema(group: FeatureGroup) -> pa.Schema:
    """The exact Arrow schema of a group's offline rows (what the engine must write too)."""
    fields = [
        pa.field(group.entity_key, pa.string()),
        pa.field("event_timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("created_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("window_start_ms", pa.int64()),
        pa.field("window_end_ms", pa.int64()),
        pa.field("source_partition", pa.int32()),
        pa.field("source_offset", pa.int64()),
        pa.field("written_ms", pa.int64()),
    ]
    fields += [pa.field(f.name, pa.int64() if f.result_type == "int" else pa.float64()) for f in group.features]
    fields += [pa.field(name, pa.int64()) for name in group.metadata_fields]
    return pa.schema(fields)


@dataclass
class _EntityWindow:
    """What one entity's next row needs: its newest event time and the events that may still count."""

    newest_ms: int
    events: list[Event] = field(default_factory=list)  # consumption order; ts >= the current window start


def offline_rows(
    group: FeatureGroup,
    events: Iterable[Event],
    *,
    partition: int = 0,
    first_offset: int = 0,
    written_ms: int | None = None,
) -> pa.Table:
    """One offline row per event of ``group``'s type, in consumption order.

    Args:
        group: the feature group.
        events: one topic-partition's records in offset order (events of other types are skipped but
            still take an offset, as they do in a shared topic).
        partition: written as ``source_partition``.
        first_offset: the offset of the first event; ``source_offset`` counts up from it.
        written_ms: the write time (wall clock, epoch ms) stamped on every row; now by default.
            ``created_timestamp`` is ``written_ms`` plus the row's index in microseconds, so it is strictly
            increasing in row order: Feast breaks ties on ``event_timestamp`` by it. Callers writing
            several batches must pass increasing ``written_ms`` values far enough apart (1 ms per 1,000 rows).

    Returns:
        A table with :func:`offline_schema`.
    """
    written = int(time.time() * 1000) if written_ms is None else written_ms
    states: dict[str, _EntityWindow] = {}
    columns: dict[str, list[Any]] = {name: [] for name in offline_schema(group).names}
    for position, event in enumerate(events):
        if not isinstance(event, group.event_type):
            continue
        entity = str(getattr(event, group.entity_key))
        ts = event.event_time_ms
        state = states.get(entity)
        if state is None:
            state = states[entity] = _EntityWindow(ts)
        state.newest_ms = max(state.newest_ms, ts)
        start, end = online_window(group, state.newest_ms)
        # Window starts only move forward: an event before this one's start can never count again.
        state.events = [e for e in (*state.events, event) if e.event_time_ms >= start]
        members = [e for e in state.events if _in_window(group, e.event_time_ms, start, end)]
        _append(columns, group, entity, members, start, end, partition, first_offset + position, written)
    n = len(columns["source_offset"])
    columns["created_timestamp"] = [written * 1000 + i for i in range(n)]
    return pa.table(columns, schema=offline_schema(group))


def _append(
    columns: dict[str, list[Any]],
    group: FeatureGroup,
    entity: str,
    members: list[Event],
    start: int,
    end: int,
    partition: int,
    offset: int,
    written: int,
) -> None:
    newest = max(e.event_time_ms for e in members)  # the newest event is always in its own window
    row: dict[str, Any] = {
        group.entity_key: entity,
        "event_timestamp": newest,
        "window_start_ms": start,
        "window_end_ms": end,
        "source_partition": partition,
        "source_offset": offset,
        "written_ms": written,
        group.event_time_field: newest,
        group.written_field: written,
        group.window_end_field: end,
    }
    row.update({f.name: aggregate(f, members) for f in group.features})
    for name, value in row.items():
        columns[name].append(value)


def _in_window(group: FeatureGroup, ts: int, start: int, end: int) -> bool:
    if group.window.kind == "sliding":
        return start <= ts <= end
    return start <= ts < end
