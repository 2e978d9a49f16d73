"""The offline copy of the online rows (Parquet, read by Feast's offline store) and the window history.

``<offline dir>/<group>/``: one row per processed event per feature group, the entity's online row right after
that event (``event_timestamp`` = the entity's newest event time, ``created_timestamp`` = write order), so
Feast's point-in-time join returns exactly what the online store served at any moment.
``<data dir>/windows/<group>/``: updates of windows other than the entity's current one (late events within grace),
which the online row never shows.

Files are named by the source offset range they cover and written before the checkpoint that commits
those offsets; ``discard_uncommitted`` deletes files a crashed run wrote past its last commit, so a range
re-processed after a crash replaces its files instead of adding rows.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from livectx.consuming import PartitionId
from livectx.features.incremental import GroupState, WindowRow
from livectx.features.running_rows import RunningRows
from livectx.features.spec import FeatureGroup

#: Files written at once (one per view and partition at a checkpoint).
WRITE_THREADS = 2
#: Rows of one view and partition written without waiting for the checkpoint: under a backlog the files
#: are then encoded while the engine applies the next batch, not while it waits to commit.
EAGER_ROWS = 20_000
log = logging.getLogger(__name__)


class OfflineRows:
    """Buffers offline rows between checkpoints: one at a time from the per-event path, a batch's at once
    (:class:`~livectx.features.running_rows.RunningRows`) from the batch path."""

    def __init__(self, offline_dir: Path, windows_dir: Path, groups: list[FeatureGroup]) -> None:
        self._dirs = {"offline": offline_dir, "windows": windows_dir}
        self._groups = {g.name: g for g in groups}
        self._rows: dict[tuple[str, str, PartitionId], list[tuple[Any, ...]]] = defaultdict(list)
        self._batches: dict[tuple[str, str, PartitionId], list[RunningRows]] = defaultdict(list)
        self._last_created_us = 0
        self._writers = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="livectx-offline")
        self._pending: list[Future[None]] = []

    def add(self, group: FeatureGroup, tp: PartitionId, offset: int, entity: str, newest: int, row: WindowRow) -> None:
        self._rows[("offline", group.name, tp)].append((entity, newest, offset, row))

    def add_window(self, group: FeatureGroup, tp: PartitionId, offset: int, entity: str, row: WindowRow) -> None:
        self._rows[("windows", group.name, tp)].append((entity, row.newest_event_ms, offset, row))

    def add_running(self, group: FeatureGroup, tp: PartitionId, rows: RunningRows) -> None:
        """A batch's rows, computed at once by the batch path. Once ``EAGER_ROWS`` wait for a view and
        partition they are written at once, beside the engine's work, instead of at the checkpoint (their
        ``written_ms`` is then the time they were written)."""
        key = ("offline", group.name, tp)
        batches = self._batches[key]
        batches.append(rows)
        if sum(len(b.offsets) for b in batches) >= EAGER_ROWS:
            self._submit(key, time.time_ns() // 1_000_000)

    def record(self, state: GroupState, tp: PartitionId, offset: int, entity: str, ts: int, *, accepted: bool) -> None:
        """The rows of one event just given to ``state`` (``accepted``: it was not too late for every
        window): the entity's online row after it, and the windows older than that row's that a late event
        within grace updated (the window history: the online row never shows them). A hopping view's later
        windows, which also hold an on-time event, are not history: each is recorded as the online row
        once it is the current window."""
        group = state.group
        if not accepted:  # nothing changed: the row served is still the newest window's
            self.add(group, tp, offset, entity, state.newest[entity], state.row(entity))
            return
        current = state.current_window(entity)
        self.add(group, tp, offset, entity, state.newest[entity], state.window(entity, *current))
        for start, end in state.open_windows_of(entity, ts):
            if start < current[0]:
                self.add_window(group, tp, offset, entity, state.window(entity, start, end))

    def for_partition(self, tp: PartitionId) -> PartitionRows:
        return PartitionRows(self, tp)

    def flush(self, written_ms: int) -> None:
        """Write every buffered row and wait for every file (before the offsets they cover are committed).
        Within a file rows are in offset order and ``created_timestamp`` increases with it (the write order
        Feast breaks ties by)."""
        for key in list({*self._rows, *self._batches}):
            self._submit(key, written_ms)
        self._wait()

    def _submit(self, key: tuple[str, str, PartitionId], written_ms: int) -> None:
        """Start writing ``key``'s buffered rows as one file (Parquet encoding releases the GIL: files are
        written beside the engine's thread)."""
        job = self._file(key, self._rows.pop(key, []), self._batches.pop(key, []), written_ms)
        if job is not None:
            self._pending.append(self._writers.submit(_write, job))

    def _wait(self, *, uncommitted: bool = False) -> None:
        """Until every file started is written, failed or not (none may land after a reload deleted the
        uncommitted ones). The first error is then raised, unless the files are ``uncommitted`` (about to
        be forgotten: a lost one is only logged)."""
        pending, self._pending = self._pending, []
        errors = [exc for exc in (future.exception() for future in pending) if exc is not None]
        for exc in errors if uncommitted else ():
            log.warning("an uncommitted offline file was not written: %s", exc)
        if errors and not uncommitted:
            raise errors[0]

    def _file(
        self,
        key: tuple[str, str, PartitionId],
        rows: list[tuple[Any, ...]],
        batches: list[RunningRows],
        written_ms: int,
    ) -> tuple[pa.Table, Path, str] | None:
        kind, name, (topic, partition) = key
        group = self._groups[name]
        parts = [_row_columns(group, rows)] + [_running_columns(group, r) for r in batches]
        tables = [pa.table(p) for p in parts if len(p["source_offset"])]
        if not tables:
            return None
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        offsets = table.column("source_offset").to_numpy()
        if bool(np.any(offsets[1:] < offsets[:-1])):  # rows of disordered entities beside a batch's
            table = table.sort_by([("source_offset", "ascending")])  # stable: a window row's order is kept
        n = table.num_rows
        columns: dict[str, Any] = {
            group.entity_key: table.column("entity"),
            "event_timestamp": table.column("event_timestamp").cast(pa.timestamp("ms", tz="UTC")),
        }
        if kind == "offline":
            base = max(time.time_ns() // 1000, self._last_created_us + 1)
            self._last_created_us = base + n - 1
            created = pa.array(np.arange(base, base + n, dtype=np.int64))
            columns["created_timestamp"] = created.cast(pa.timestamp("us", tz="UTC"))
        written = pa.array(np.full(n, written_ms, dtype=np.int64))
        columns |= {
            "window_start_ms": table.column("window_start_ms"),
            "window_end_ms": table.column("window_end_ms"),
            "source_partition": pa.array(np.full(n, partition, dtype=np.int32)),
            "source_offset": table.column("source_offset"),
            "written_ms": written,
        }
        columns |= {f.name: table.column(f.name) for f in group.features}
        columns[group.event_time_field] = table.column("newest_event_ms")
        columns[group.written_field] = written
        columns[group.window_end_field] = table.column("window_end_ms")
        first, last = table.column("source_offset")[0].as_py(), table.column("source_offset")[-1].as_py()
        target = self._dirs[kind] / name
        target.mkdir(parents=True, exist_ok=True)
        return pa.table(columns), target / f"{topic}-{partition}-{first:012d}-{last:012d}.parquet", group.entity_key

    def drop_buffered(self) -> None:
        """Forget what is buffered (a fenced commit); files already started are finished first, so the
        reload's :meth:`discard_uncommitted` sees and deletes them."""
        self._rows.clear()
        self._batches.clear()
        self._wait(uncommitted=True)

    def discard_uncommitted(self, tp: PartitionId, next_offset: int) -> int:
        """Delete files of ``tp`` that start at or after its committed offset (written by a run that crashed
        before committing them, or started before a fenced commit); returns how many."""
        self._wait(uncommitted=True)
        topic, partition = tp
        removed = 0
        for kind in ("offline", "windows"):
            for name in self._groups:
                folder = self._dirs[kind] / name
                if not folder.is_dir():
                    continue
                for path in folder.glob(f"{topic}-{partition}-*.parquet"):
                    first = int(path.stem.rsplit("-", 2)[1])
                    if first >= next_offset:
                        path.unlink(missing_ok=True)
                        removed += 1
        return removed


def _write(job: tuple[pa.Table, Path, str]) -> None:
    """One file, atomically (a reader never sees half of it). Dictionaries only for the entity column and
    zstd's fastest level: 3x cheaper to write than the defaults (measured, 160k rows: 57 ms against 176 ms),
    and smaller files."""
    import pyarrow.parquet as pq

    table, path, entity_key = job
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1, use_dictionary=[entity_key])
    tmp.replace(path)


class PartitionRows:
    """What the batch path records offline rows through, for one source partition
    (:class:`~livectx.features.batch_apply.OfflineSink`)."""

    def __init__(self, offline: OfflineRows, tp: PartitionId) -> None:
        self._offline, self._tp = offline, tp

    def event(self, state: GroupState, entity: str, ts: int, seq: int, accepted: bool) -> None:
        self._offline.record(state, self._tp, seq, entity, ts, accepted=accepted)

    def rows(self, state: GroupState, rows: RunningRows) -> None:
        self._offline.add_running(state.group, self._tp, rows)


def _feature_type(result_type: str) -> pa.DataType:
    return pa.int64() if result_type == "int" else pa.float64()


def _row_columns(group: FeatureGroup, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Columns of rows recorded one at a time: (entity, newest event time, offset, window row)."""
    columns: dict[str, Any] = {
        "entity": pa.array([r[0] for r in rows], pa.string()),
        "event_timestamp": pa.array([r[1] for r in rows], pa.int64()),
        "window_start_ms": pa.array([r[3].window_start_ms for r in rows], pa.int64()),
        "window_end_ms": pa.array([r[3].window_end_ms for r in rows], pa.int64()),
        "source_offset": pa.array([r[2] for r in rows], pa.int64()),
        "newest_event_ms": pa.array([r[3].newest_event_ms for r in rows], pa.int64()),
    }
    for f in group.features:
        columns[f.name] = pa.array([r[3].values[f.name] for r in rows], _feature_type(f.result_type))
    return columns


def _running_columns(group: FeatureGroup, rows: RunningRows) -> dict[str, Any]:
    """Columns of a batch's rows (in order, each row's newest event is its own)."""
    columns: dict[str, Any] = {
        "entity": rows.entities.cast(pa.string()),
        "event_timestamp": pa.array(rows.event_ms, pa.int64()),
        "window_start_ms": pa.array(rows.window_start_ms, pa.int64()),
        "window_end_ms": pa.array(rows.window_end_ms, pa.int64()),
        "source_offset": pa.array(rows.offsets, pa.int64()),
        "newest_event_ms": pa.array(rows.event_ms, pa.int64()),
    }
    for f in group.features:
        values = rows.values[f.name]
        kind = _feature_type(f.result_type)
        columns[f.name] = values.cast(kind) if isinstance(values, pa.Array) else pa.array(values, kind)
    return columns
