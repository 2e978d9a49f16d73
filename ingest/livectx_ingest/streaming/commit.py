"""One checkpoint of the feature engine: side outputs first, then online rows, state and offsets together.

Split from :mod:`.engine`, which owns the loop and the partitions: this part owns what a commit touches
(the checkpoint store, the views' row writers, the side outputs, Kafka's offset mirror) and the order
exactly-once depends on:

    flush dead letters, late events, offline rows (acknowledged)
    -> crash point ``before-commit``
    -> rows + state + next offsets in one fenced store commit
    -> partitions marked committed -> crash point ``after-commit``
    -> offsets mirrored to Kafka (for lag only) -> ``on_written``

A side output is never behind the store: a crash anywhere replays from the stored offsets, and the side
outputs are idempotent for a replay. The store's key format (``<view>\\x1f<entity>``,
:data:`~.checkpoint.FIELD_SEP`) and the rows' wire commands (:class:`~.online_writer.RowWrites`) are
built here and in the writer, never in the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from livectx.dead_letter import DeadLetterPublisher
from livectx.features.incremental import WindowRow
from livectx_ingest.streaming.apply import Partition
from livectx_ingest.streaming.checkpoint import FIELD_SEP, Checkpoints, PartitionId
from livectx_ingest.streaming.late import LateEvents
from livectx_ingest.streaming.mirror import OffsetMirror
from livectx_ingest.streaming.offline import OfflineRows
from livectx_ingest.streaming.online_writer import FeastRedisWriter, RowWrites

#: ``on_written(rows_by_view, visible_ms, seconds)``: see :class:`~.engine.FeatureEngine`.
OnWritten = Callable[[dict[str, list[WindowRow]], int, float], None]


@dataclass
class Timing:
    """``time.perf_counter()`` of the first record consumed and of the last commit: the busy time that
    throughput is counted over (a worker's idle start and tail do not count)."""

    first_consumed_at: float | None = None
    last_committed_at: float | None = None


@dataclass
class SideOutputs:
    """What the engine writes besides the online store; each must be acknowledged before the offsets that
    cover it are committed."""

    dead_letters: DeadLetterPublisher
    late: LateEvents
    offline: OfflineRows | None

    def flush(self, written_ms: int) -> None:
        self.dead_letters.flush()
        self.late.flush()
        if self.offline is not None:
            self.offline.flush(written_ms)

    def discard_uncommitted(self, tp: PartitionId, next_offset: int | None) -> None:
        """A partition is (re)loaded at ``next_offset``: offline rows past it were never committed."""
        if self.offline is not None:
            self.offline.discard_uncommitted(tp, next_offset or 0)

    def drop_buffered(self) -> None:
        """A commit was fenced: rows buffered since the last one are re-made after the re-read."""
        if self.offline is not None:
            self.offline.drop_buffered()


@dataclass
class Snapshot:
    """What one checkpoint writes: the online rows by view (for ``on_written``), their store commands and
    each partition's changed state entries (``None``: an evicted entity's entry, deleted)."""

    rows: dict[str, list[WindowRow]]
    writes: RowWrites
    state: dict[PartitionId, dict[str, bytes | None]]


def snapshot(
    todo: Mapping[PartitionId, Partition],
    evicted: Mapping[PartitionId, dict[str, list[str]]],
    writers: Mapping[str, FeastRedisWriter],
    written_ms: int,
) -> Snapshot:
    """The rows and state of every entity touched (or evicted) in ``todo`` since the last commit.

    Per entity, not per event: a checkpoint writes one row per entity and view, however many events it
    took. The loops stay flat (no helper call per entity): a checkpoint under a backlog walks 100k rows."""
    sep = FIELD_SEP
    rows: dict[str, list[WindowRow]] = {}  # by view
    writes = RowWrites(written_ms)
    state: dict[PartitionId, dict[str, bytes | None]] = {}
    for tp, part in todo.items():
        fields: dict[str, bytes | None] = {}
        for name, gone in evicted.get(tp, {}).items():
            for entity in gone:
                writes.remove(writers[name], entity)
                fields[f"{name}{sep}{entity}"] = None
        for name, entities in part.dirty.items():
            view_rows = rows.setdefault(name, [])
            writer = writers[name]
            table = part.tables.get(name)
            if table is not None:  # a table view: its state is per row key, its rows per entity
                features = writer.layout.group.features
                for row_key in table.dirty:
                    fields[f"{name}{sep}{row_key}"] = table.dump(row_key)
                for entity in entities:
                    row = table.row(entity, features)
                    view_rows.append(row)
                    writes.add(writer, entity, row, part.next_offset)  # type: ignore[arg-type]
                continue
            group_state = part.states[name]
            for entity in entities:
                row = group_state.row(entity)
                view_rows.append(row)
                writes.add(writer, entity, row, part.next_offset)  # type: ignore[arg-type]
                fields[f"{name}{sep}{entity}"] = group_state.dump(entity)
        state[tp] = fields
    return Snapshot(rows, writes, state)


class Committer:
    """Makes the engine's partitions durable (:meth:`checkpoint`), in the order the module describes.

    ``crash_point(phase)`` is the engine's fault hook; ``fenced=False`` commits without the epoch check
    (the engine's ``exactly_once`` off)."""

    def __init__(
        self,
        store: Checkpoints,
        writers: Mapping[str, FeastRedisWriter],
        outputs: SideOutputs,
        mirror: OffsetMirror,
        crash_point: Callable[[str], None],
        *,
        fenced: bool,
        on_written: OnWritten | None,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.mirror = mirror
        self.timing = Timing()
        self._writers = writers
        self._crash_point = crash_point
        self._fenced = fenced
        self._on_written = on_written

    def checkpoint(self, partitions: Mapping[PartitionId, Partition], final: bool = False) -> None:
        """Commit every partition that moved (or evicted an entity) since its last commit; ``final``: a
        last one (on stop or revoke) that sweeps idle entities and mirrors offsets now."""
        swept_at = time.monotonic()  # idle entities, past their view's ttl: evicted in this commit
        evicted = {tp: gone for tp, p in partitions.items() if (gone := p.evict_idle(swept_at, force=final))}
        todo = {
            tp: p
            for tp, p in partitions.items()
            if p.next_offset is not None and (p.next_offset != p.committed or tp in evicted)
        }
        if not todo:
            self.mirror.tick(final)
            return
        began = time.perf_counter()
        written_ms = int(time.time() * 1000)
        self.outputs.flush(written_ms)
        batch = snapshot(todo, evicted, self._writers, written_ms)
        self._crash_point("before-commit")
        self.store.commit(
            {tp: p.epoch for tp, p in todo.items()},
            {tp: p.next_offset for tp, p in todo.items()},  # type: ignore[misc]
            {tp: p.committed for tp, p in todo.items()},
            batch.state,
            batch.writes,
            fenced=self._fenced,
        )
        self.timing.last_committed_at = time.perf_counter()
        visible_ms = int(time.time() * 1000)
        for part in todo.values():
            part.committed = part.next_offset
            for entities in part.dirty.values():
                entities.clear()
            for table in part.tables.values():
                table.clean()
        self._crash_point("after-commit")
        self.mirror.committed(todo)
        self.mirror.tick(final)
        if self._on_written is not None and batch.rows:
            self._on_written(batch.rows, visible_ms, time.perf_counter() - began)
