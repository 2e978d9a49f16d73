"""The online row after every event of a batch, for the offline copy, computed before the batch is merged.

The offline copy records, per event and view, the entity's online row right after that event
(:mod:`livectx_ingest.streaming.offline`). Event by event that is a ``GroupState.window`` per event and
view, and it kept a default worker (which writes the copy) at about 11,000 events/s. Here the batch path
(:mod:`.batch_apply`) computes them for all of a batch's in-order entities at once: the state's part of
each window becomes "prior rows" (a bucket's state; a sliding window's events; a value's latest sighting)
and every kind answers a range query over prior rows and batch rows (:mod:`.ranges`).

Call it with the state *before* the batch is merged, on rows whose entities are all in order (nothing
late, nothing older than the entity's newest event). ``tests/unit/test_running_rows.py`` checks it against
``GroupState.apply`` + ``GroupState.row`` event by event.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from livectx.features.aggregations import SEQ, TS
from livectx.features.incremental import GroupState
from livectx.features.ranges import Ranges, Unrepresentable

__all__ = ["RunningRows", "Unrepresentable", "running_rows"]


@dataclass
class RunningRows:
    """Per batch row (in the table's order): its entity, event time (the entity's newest, in order), offset,
    window bounds, and each feature's value after it."""

    entities: pa.Array
    event_ms: np.ndarray
    offsets: np.ndarray
    window_start_ms: np.ndarray
    window_end_ms: np.ndarray
    values: dict[str, Any]  # numpy or Arrow arrays


def running_rows(
    state: GroupState, table: pa.Table, codes: np.ndarray | None = None, names: list[str] | None = None
) -> RunningRows:
    """The online row after each of ``table``'s events (columns: the entity key, ``event_time_ms``,
    ``_seq`` and the group's columns; every entity in order). ``codes``/``names``: the rows' entities,
    encoded, if the caller has them (the batch path encodes a batch once for all its views). Raises
    :class:`Unrepresentable` for a batch the range queries cannot compute exactly (the caller takes the
    per-event path)."""
    group = state.group
    entities = table.column(group.entity_key).combine_chunks()
    if codes is None or names is None:
        encoded = pc.dictionary_encode(entities)
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        names = encoded.dictionary.to_pylist()
    ts = table.column(TS).to_numpy().astype(np.int64)
    if state.sliding:
        starts, ends = ts - state.size, ts
    else:
        ends = ts - ts % state.step + state.step
        starts = ends - state.size
    present, first_rows = np.unique(codes, return_index=True)
    # (code, name, the start of its earliest window): in order, an entity's first row opens that window
    earliest = list(
        zip(present.tolist(), [names[c] for c in present.tolist()], starts[first_rows].tolist(), strict=True)
    )
    columns = {c: table.column(c).combine_chunks() for c in state.columns}
    if any(column.null_count for column in columns.values()):
        raise Unrepresentable("a missing value")  # the per-event path says what it makes of it
    columns_ts = table.column(TS).combine_chunks()
    offsets = table.column(SEQ).to_numpy().astype(np.int64)
    values: dict[str, Any] = {}
    if state.sightings_only:
        for i, plan in enumerate(state.plan.plans):
            ent, times, sets = _sightings(state, earliest, i)
            q = Ranges(ent, times, codes, ts, starts)
            values[plan.feature.name] = plan.kind.running(q, sets, columns[plan.feature.column], None)  # type: ignore[index]
        return RunningRows(entities, ts, offsets, starts, ends, values)
    ent, times, states = _series(state, earliest) if state.sliding else _buckets(state, earliest)
    q = Ranges(ent, times, codes, ts, starts)
    for i, plan in enumerate(state.plan.plans):
        where = plan.feature.where
        mask = None if where is None else pc.equal(columns[where[0]], pa.scalar(where[1])).to_numpy(False)
        column = columns[plan.feature.column] if plan.feature.column is not None else columns_ts
        values[plan.feature.name] = plan.kind.running(q, states[i], column, mask)
    return RunningRows(entities, ts, offsets, starts, ends, values)


#: Per entity of the batch: its code, its name and the start of its earliest window.
Earliest = list[tuple[int, str, int]]


def _buckets(state: GroupState, earliest: Earliest) -> tuple[Any, Any, list[list[Any]]]:
    """Prior rows of bucketed windows: each entity's buckets from its earliest window on, one per bucket,
    with each feature's state (in the state's order: :class:`~.ranges.Ranges` sorts them by time)."""
    ent: list[int] = []
    times: list[int] = []
    picked: list[list[Any]] = []
    all_buckets = state.buckets
    for code, name, start in earliest:
        buckets = all_buckets.get(name)
        if not buckets:
            continue
        starts = [b for b in buckets if b >= start]
        ent += [code] * len(starts)
        times += starts
        picked += [buckets[b] for b in starts]
    states = [[bucket[i] for bucket in picked] for i in range(1, 1 + len(state.plan.plans))]
    return np.asarray(ent, dtype=np.int64), np.asarray(times, dtype=np.int64), states


def _series(state: GroupState, earliest: Earliest) -> tuple[Any, Any, list[list[Any]]]:
    """Prior rows of sliding windows: each entity's kept events from its earliest window on, each turned
    into the state one event gives (so every kind reads prior rows as states)."""
    ent: list[int] = []
    times: list[int] = []
    plans = state.plan.plans
    adders, empties = state.plan.adders, state.plan.empties
    states: list[list[Any]] = [[] for _ in plans]
    for code, name, start in earliest:
        series = state.series.get(name)
        if not series:
            continue
        cut = bisect_left(series[0], start)
        kept = [column[cut:] for column in series]
        for ts, seq, *observed in zip(*kept, strict=True):
            ent.append(code)
            times.append(ts)
            row = tuple(observed)
            for i in range(len(plans)):
                states[i].append(adders[i](empties[i](), ts, seq, row))
    return np.asarray(ent, dtype=np.int64), np.asarray(times, dtype=np.int64), states


def _sightings(state: GroupState, earliest: Earliest, feature: int) -> tuple[Any, Any, list[set[Any]]]:
    """Prior rows of latest-sightings state: per entity, each value seen since its earliest window, at the
    time it was last seen."""
    ent: list[int] = []
    times: list[int] = []
    values: list[Any] = []
    for code, name, start in earliest:
        seen = state.sightings.get(name)
        if not seen:
            continue
        recent = [(v, t) for v, t in seen[feature].items() if t >= start]
        ent += [code] * len(recent)
        times += [t for _, t in recent]
        values += [v for v, _ in recent]
    return np.asarray(ent, dtype=np.int64), np.asarray(times, dtype=np.int64), [{v} for v in values]
