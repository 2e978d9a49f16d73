"""The Quix sink that materialises a feature group's window updates online (Redis) and offline (Parquet).

Quix calls ``write`` for each topic-partition batch when a checkpoint commits, and commits the offsets
(and, exactly-once, the Kafka transaction with the state changelog) only after every sink returned: the
online write always happens before the commit. A failure raises, the checkpoint is not committed, and the
batch is re-processed from the last commit with state restored from the changelog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quixstreams.sinks import BatchingSink, SinkBatch

from livectx.features.spec import FeatureGroup
from livectx_ingest.streaming.aggregators import EVENT_MS
from livectx_ingest.streaming.online_writer import FeastRedisWriter, Row, newest_per_entity


def is_candidate(group: FeatureGroup, start: int, end: int, newest_ms: int) -> bool:
    """Whether a window is the one an entity's online row should show for its newest event."""
    w = group.window
    if w.kind == "sliding":
        return end == newest_ms
    if w.kind == "hopping":
        return end - (w.step_ms or w.size_ms) <= newest_ms < end
    return True


class FeatureGroupSink(BatchingSink):
    """One sink per feature group."""

    def __init__(
        self,
        group: FeatureGroup,
        writer: FeastRedisWriter,
        offline_dir: Path | None,
        on_written: Callable[[list[Row], int], None] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._group = group
        self._writer = writer
        self._offline_dir = offline_dir
        self._on_written = on_written
        self._before_commit = before_commit

    def write(self, batch: SinkBatch) -> None:
        rows = [self._row(item.key, item.value, item.offset) for item in batch]
        if self._before_commit is not None:
            self._before_commit()  # e.g. late events acknowledged before their offsets are committed
        if not rows:
            return
        entities = sorted({r.entity_id for r in rows})
        final = newest_per_entity(rows, self._writer.stored_versions(entities))
        written_ms = int(time.time() * 1000)
        self._writer.write(final, written_ms)
        if self._offline_dir is not None:
            self._write_offline(rows, batch.topic, batch.partition, written_ms)
        if self._on_written is not None:
            self._on_written(final, written_ms)

    def _row(self, key: Any, value: dict[str, Any], offset: int) -> Row:
        start, end = int(value["start"]), int(value["end"])
        newest = int(value[EVENT_MS])
        entity = key.decode() if isinstance(key, bytes) else str(key)
        values = {f.name: value.get(f.name) for f in self._group.features}
        return Row(entity, start, end, newest, offset, is_candidate(self._group, start, end, newest), values)

    def _write_offline(self, rows: list[Row], topic: str, partition: int, written_ms: int) -> None:
        """Every window update, for point-in-time training data. Files are named by offset range, so a
        re-processed range overwrites rather than adds; readers keep the newest row per (entity, window)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = self._offline_dir / self._group.name  # type: ignore[operator]
        target.mkdir(parents=True, exist_ok=True)
        columns: dict[str, list[Any]] = {
            self._group.entity_key: [r.entity_id for r in rows],
            "event_timestamp": [r.newest_event_ms for r in rows],
            "window_start_ms": [r.window_start_ms for r in rows],
            "window_end_ms": [r.window_end_ms for r in rows],
            "source_offset": [r.offset for r in rows],
            "written_ms": [written_ms] * len(rows),
        }
        for feature in self._group.features:
            columns[feature.name] = [r.values.get(feature.name) for r in rows]
        table = pa.table(columns)
        table = table.set_column(1, "event_timestamp", table["event_timestamp"].cast(pa.timestamp("ms", tz="UTC")))
        name = f"{topic}-{partition}-{rows[0].offset:012d}-{rows[-1].offset:012d}.parquet"
        tmp = target / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(target / name)
