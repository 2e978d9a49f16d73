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

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from livectx.consuming import PartitionId
from livectx.features.incremental import WindowRow
from livectx.features.spec import FeatureGroup


class OfflineRows:
    def __init__(self, offline_dir: Path, windows_dir: Path, groups: list[FeatureGroup]) -> None:
        self._dirs = {"offline": offline_dir, "windows": windows_dir}
        self._groups = {g.name: g for g in groups}
        self._rows: dict[tuple[str, str, PartitionId], list[tuple[Any, ...]]] = defaultdict(list)
        self._last_created_us = 0

    def add(self, group: FeatureGroup, tp: PartitionId, offset: int, entity: str, newest: int, row: WindowRow) -> None:
        now_us = time.time_ns() // 1000
        self._last_created_us = created = max(now_us, self._last_created_us + 1)
        self._rows[("offline", group.name, tp)].append((entity, newest, created, offset, row))

    def add_window(self, group: FeatureGroup, tp: PartitionId, offset: int, entity: str, row: WindowRow) -> None:
        self._rows[("windows", group.name, tp)].append((entity, row.newest_event_ms, 0, offset, row))

    def flush(self, written_ms: int) -> None:
        """Write every buffered row (before the offsets they cover are committed)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        for (kind, name, (topic, partition)), rows in self._rows.items():
            if not rows:
                continue
            group = self._groups[name]
            columns: dict[str, Any] = {
                group.entity_key: pa.array([r[0] for r in rows], pa.string()),
                "event_timestamp": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            }
            if kind == "offline":
                columns["created_timestamp"] = pa.array([r[2] for r in rows], pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                )
            columns |= {
                "window_start_ms": pa.array([r[4].window_start_ms for r in rows], pa.int64()),
                "window_end_ms": pa.array([r[4].window_end_ms for r in rows], pa.int64()),
                "source_partition": pa.array([partition] * len(rows), pa.int32()),
                "source_offset": pa.array([r[3] for r in rows], pa.int64()),
                "written_ms": pa.array([written_ms] * len(rows), pa.int64()),
            }
            for feature in group.features:
                kind_type = pa.int64() if feature.result_type == "int" else pa.float64()
                columns[feature.name] = pa.array([r[4].values[feature.name] for r in rows], kind_type)
            columns[group.event_time_field] = pa.array([r[4].newest_event_ms for r in rows], pa.int64())
            columns[group.written_field] = pa.array([written_ms] * len(rows), pa.int64())
            columns[group.window_end_field] = pa.array([r[4].window_end_ms for r in rows], pa.int64())
            target = self._dirs[kind] / name
            target.mkdir(parents=True, exist_ok=True)
            file = f"{topic}-{partition}-{rows[0][3]:012d}-{rows[-1][3]:012d}.parquet"
            tmp = target / f".{file}.tmp"
            pq.write_table(pa.table(columns), tmp, compression="zstd")
            tmp.replace(target / file)
        self._rows.clear()

    def drop_buffered(self) -> None:
        self._rows.clear()

    def discard_uncommitted(self, tp: PartitionId, next_offset: int) -> int:
        """Delete files of ``tp`` that start at or after its committed offset (written by a run that crashed
        before committing them); returns how many."""
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
