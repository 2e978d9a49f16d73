"""The streaming feature engine: Kafka events -> windowed aggregations -> Feast's Redis online store.

Loop: consume a batch, decode and validate each event (bad ones to the dead-letter topic), apply it to the
window state of every feature group reading its topic (too-late ones to the late-events topic), and every
``commit_interval_s`` checkpoint: the online row of every entity touched since the last checkpoint, that
state and the next offsets go to Redis in one fenced transaction (:mod:`.checkpoint`; on a Redis Cluster
versioned rows, then per partition: :mod:`.cluster_checkpoint`), after the side outputs (dead letters,
late events, offline Parquet) were acknowledged. Entities idle past their view's ttl are evicted in the
same commit (:meth:`~.apply.Partition.evict_idle`); a Redis outage is waited out (:mod:`.store_outage`).

Parts: :mod:`.apply` (records into state), :mod:`.cadence` (when), :mod:`.checkpoint` (commits),
:class:`~.online_writer.RowWrites` (the rows' commands), :mod:`.mirror` (Kafka's copy of the offsets).

Records in the Confluent wire format are decoded by their schema id (:mod:`livectx.wire`). A registry that
does not answer is nobody's data problem, so it never dead-letters: the record it stopped at and every later
record of its partition are *held* (kept, in order, not applied), the partition is paused on the consumer,
what was applied is checkpointed, and the held records are retried with a growing, bounded wait
(:class:`~livectx.wire.RegistryPause`) until the registry answers. Offsets never pass a held record, so
nothing is lost, skipped or counted twice; the other partitions keep going.

Why not Quix Streams: it applies each event to each window through RocksDB and a changelog record, ~0.4 ms
per event and window operator here (0.008x raw consume); here an event costs a few dict operations per
group and Redis sees one write per entity per checkpoint. The semantics are Quix's (per-entity event-time
closing with grace), pinned by :mod:`livectx.features.recompute`, the reference the tests compare with.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from livectx import faults, tracing
from livectx.cdc.changelog import ChangelogGroup
from livectx.dead_letter import DeadLetterPublisher
from livectx.features.incremental import WindowRow
from livectx.features.spec import FeatureGroup
from livectx.wire import RegistryPause, SchemaCache
from livectx_ingest.streaming.apply import COLUMNAR_MIN, Partition, RecordApplier, plan_sources
from livectx_ingest.streaming.cadence import CheckpointCadence
from livectx_ingest.streaming.checkpoint import Checkpoints, FencedError, RolledBack, TopicPartition, checkpoints_for
from livectx_ingest.streaming.late import LateEvents
from livectx_ingest.streaming.mirror import OffsetMirror
from livectx_ingest.streaming.offline import OfflineRows
from livectx_ingest.streaming.online_writer import FeastRedisWriter, RowWrites

log = logging.getLogger(__name__)
BATCH = 5_000
#: Under a backlog, consumed batches are pooled up to this many events before being applied: the columnar
#: path's Python work is per entity and batch, so bigger batches mean fewer merges per event.
POOL = 60_000
#: Test hook (:mod:`livectx.faults`): ``<phase>:<n>`` SIGKILLs the worker at the n-th ``event`` processed, or
#: the n-th checkpoint ``before-commit`` (side outputs written, Redis not), ``after-commit`` (Redis
#: written, Kafka not) or, on a Redis Cluster, ``rows-written`` (rows written, state and offsets not).
CRASH_ENV = "LIVECTX_ENGINE_CRASH"


class FeatureEngine:
    """One worker process of a consumer group. ``on_written(rows_by_view, visible_ms, seconds)`` sees every
    online row a checkpoint wrote, by view, with the wall-clock time its commit returned (when readers can
    see it; the rows' own ``written`` field holds the checkpoint's start, as the values must be encoded
    before they are sent) and how long the checkpoint took."""

    def __init__(
        self,
        *,
        consumer: Any,
        redis_client: Any,
        consumer_group: str,
        groups: Sequence[FeatureGroup],
        topic_map: Mapping[str, str],
        dead_letters: DeadLetterPublisher,
        late: LateEvents,
        offline: OfflineRows | None,
        feast_project: str = "livectx",
        exactly_once: bool = True,
        commit_interval_s: float = 0.01,
        max_batch: int = BATCH,
        on_written: Callable[[dict[str, list[WindowRow]], int, float], None] | None = None,
        columnar: bool = True,
        columnar_min: int = COLUMNAR_MIN,
        schemas: SchemaCache | None = None,
        registry_pause: RegistryPause | None = None,
        tables: Sequence[ChangelogGroup] = (),
        checkpoints: Checkpoints | None = None,
    ) -> None:
        """``checkpoints``: where state and offsets are committed (default: ``redis_client``'s, through
        :func:`~.checkpoint.checkpoints_for`; unit tests pass an in-memory one)."""
        self._consumer = consumer
        self._registry_pause = registry_pause or RegistryPause(log)
        self._retry_s = 0.0  # > 0: records are held for the registry; wait this long, then retry them
        self._held_tps: set[TopicPartition] = set()  # partitions paused on the consumer meanwhile
        self._checkpoints = checkpoints or checkpoints_for(redis_client, consumer_group, crash_point=self._crash_point)
        self.consumer_group = consumer_group
        self._groups = list(groups)
        self._writers = {g.name: FeastRedisWriter(redis_client, feast_project, g) for g in (*groups, *tables)}  # type: ignore[arg-type]
        # The columnar path skips the per-event online rows the offline copy records, so it serves workers
        # that do not write one (the offline copy's per-event rows are per-event work).
        self._sources = plan_sources(groups, tables, topic_map, columnar=columnar and offline is None)
        self._dead_letters = dead_letters
        self._late = late
        self._offline = offline
        self._exactly_once = exactly_once
        self._interval = commit_interval_s
        self._max_batch = max_batch
        self._crash_hits: dict[str, int] = {}
        self._crash_armed = bool(os.environ.get(CRASH_ENV))  # read once: the per-event check stays free
        #: Turns records into state (schemas: writer schemas of framed records; None: the process-wide
        #: cache over the configured registry).
        self._applier = RecordApplier(
            self._sources, dead_letters=dead_letters, late=late, offline=offline, schemas=schemas,
            columnar_min=columnar_min, crash_point=self._crash_point, crash_armed=self._crash_armed,
        )  # fmt: skip
        self._on_written = on_written
        self._partitions: dict[TopicPartition, Partition] = {}
        self._stop = threading.Event()
        self._mirror = OffsetMirror(consumer)
        self._pool: list[Any] = []
        #: perf_counter() of the first record consumed and of the last commit (throughput accounting).
        self.first_consumed_at: float | None = None
        self.last_committed_at: float | None = None
        self._kafka_tps: list[Any] = []  # assigned partitions, as confluent_kafka.TopicPartition

    @property
    def events_processed(self) -> int:
        return self._applier.events_processed

    @property
    def events_columnar(self) -> int:
        """Of the events processed, those applied by the columnar path."""
        return self._applier.events_columnar

    @property
    def topics(self) -> list[str]:
        return list(self._sources)

    def stop(self) -> None:
        self._stop.set()

    # -- partition ownership ------------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING
        from confluent_kafka import TopicPartition as KafkaTP

        self._pool.clear()  # consumed before the rebalance: the new assignment re-reads from its offsets
        self._held_tps.clear()  # (held records included: a new assignment starts unpaused)
        self._retry_s = 0.0
        tps = [(p.topic, p.partition) for p in partitions]
        epochs = self._checkpoints.claim(tps)
        offsets = self._checkpoints.offsets(tps)
        for p, tp in zip(partitions, tps, strict=True):
            self._partitions[tp] = self._load(tp, epochs[tp], offsets[tp])
            p.offset = OFFSET_BEGINNING if offsets[tp] is None else offsets[tp]
        consumer.assign(partitions)
        self._kafka_tps = [KafkaTP(t, p) for t, p in self._partitions]
        self._mirror.pending = True
        log.info("assigned %s (resuming from %s)", tps, offsets)

    def _load(self, tp: TopicPartition, epoch: int, next_offset: int | None) -> Partition:
        part = self._sources[tp[0]].new_partition(epoch, next_offset)
        for view, key, raw in self._checkpoints.state(tp):
            part.load(view, key, raw)
        if self._offline is not None:
            self._offline.discard_uncommitted(tp, next_offset or 0)
        return part

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._pool.clear()
        self._held_tps.clear()
        try:
            self.checkpoint(final=True)
        except (FencedError, RolledBack) as exc:  # the next owner resumes from what the store holds
            log.warning("revoked partitions not committed: %s", exc)
            self._drop_uncommitted()
        for p in partitions:
            self._partitions.pop((p.topic, p.partition), None)
        self._kafka_tps = []
        consumer.unassign()

    def _drop_uncommitted(self, reclaim: Sequence[TopicPartition] = ()) -> None:
        """After a fenced commit: forget everything since the last commit and reload what we still own;
        claim ``reclaim`` again first (the store rolled back past our claim of them)."""
        if self._offline is not None:
            self._offline.drop_buffered()
        self._pool.clear()  # held records too: the seek below re-reads everything after the commit
        self._resume_held(set(self._held_tps))
        tps = list(self._partitions)
        epochs = self._checkpoints.claim([tp for tp in reclaim if tp in self._partitions])
        offsets = self._checkpoints.offsets(tps)
        for tp in tps:
            old = self._partitions[tp]
            self._partitions[tp] = self._load(tp, epochs.get(tp, old.epoch), offsets[tp])
            from confluent_kafka import OFFSET_BEGINNING
            from confluent_kafka import TopicPartition as KafkaTP

            # No offset stored: nothing of the partition is in the state, so it is read from the start.
            self._consumer.seek(KafkaTP(tp[0], tp[1], OFFSET_BEGINNING if offsets[tp] is None else offsets[tp]))

    # -- the loop -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; checkpoint on the way out.

        Checkpoint cadence adapts to load (:class:`~.cadence.CheckpointCadence`): every
        ``commit_interval_s`` while the worker keeps up, spaced out within a share of the time under a
        backlog."""
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        gc.freeze()  # everything imported so far (Feast, pandas, ...) is permanent: never walk it again
        cadence = CheckpointCadence(self._interval, time.monotonic())
        frozen_at = cadence.last_s
        poll_s = min(0.005, self._interval)
        pool = self._pool
        try:
            while not self._stop.is_set():
                retry = self._retry_s > 0
                if retry:  # records held for the registry: make the rest durable, wait, then retry them
                    self._checkpoint_or_drop()
                    cadence.started(time.monotonic())
                    self._stop.wait(self._retry_s)
                    self._retry_s = 0.0
                timeout = cadence.poll_timeout(time.monotonic(), poll_s)
                # A consumer that cannot pause partitions (a cold-tier replay) is not read while records
                # are held; a Kafka consumer is (its held partitions paused), so the group sees it alive.
                can_read = not retry or hasattr(self._consumer, "pause")
                messages = self._consumer.consume(self._max_batch, timeout=timeout) if can_read else []
                if messages and self.first_consumed_at is None:
                    self.first_consumed_at = time.perf_counter()
                pool.extend(messages)
                backlog = len(messages) >= self._max_batch or self._unconsumed() >= self._max_batch
                cadence.observe(backlog, self._dirty_rows() if backlog else 0)
                now = time.monotonic()
                due = cadence.due(now)
                if pool and (due or not backlog or len(pool) >= POOL or retry):
                    if tracing.STATE.enabled:  # one span per batch, linked to its traced records
                        traced = {"livectx.consumer_group": self.consumer_group}
                        with tracing.batch_span("livectx.engine batch", pool, **traced):
                            held = self._process_batch(pool)
                    else:  # off: one attribute check per batch, nothing per record
                        held = self._process_batch(pool)
                    pool.clear()
                    pool.extend(held)
                    if due and backlog:  # the rows just applied count in the next checkpoint's cost
                        cadence.grow(self._dirty_rows())
                        due = cadence.due(now)
                self._mirror.tick(everything=self._partitions)
                if due:
                    cadence.started(time.monotonic())
                    rows = self._dirty_rows()
                    self._checkpoint_or_drop()
                    done = time.monotonic()
                    cadence.finished(done, rows)
                    if done - frozen_at > 1.0:
                        # Window state is long-lived and acyclic: move it out of the cyclic GC's sight so a
                        # full collection never walks it (measured: 100+ ms pauses, the freshness p99).
                        gc.freeze()
                        frozen_at = done
            self._checkpoint_or_drop(final=True)
        finally:
            self._consumer.close()

    def _checkpoint_or_drop(self, final: bool = False) -> None:
        try:
            self.checkpoint(final)
        except FencedError as exc:
            log.warning("%s: dropping uncommitted work", exc)
            self._drop_uncommitted()
        except RolledBack as exc:  # the whole store went back, as a rule: claim every partition again
            log.warning("%s: resuming from what it holds", exc)
            self._drop_uncommitted(reclaim=list(self._partitions))

    def _dirty_rows(self) -> int:
        """Online rows the next checkpoint writes (one per entity touched per view)."""
        return sum(len(entities) for part in self._partitions.values() for entities in part.dirty.values())

    def _unconsumed(self) -> int:
        """Records on the broker not consumed yet, from the high watermarks of the last fetch responses
        (no broker round trip): a consume call returns less than a full batch whenever the fetcher lags
        this loop, so a short batch alone does not mean the worker has caught up."""
        if not self._kafka_tps:
            return 0
        behind = 0
        for position in self._consumer.position(self._kafka_tps):
            if position.offset >= 0:
                high = self._consumer.get_watermark_offsets(position, cached=True)[1]
                if high >= 0:
                    behind += max(0, high - position.offset)
        return behind

    def _process_batch(self, messages: list[Any]) -> list[Any]:
        """Apply consumed messages (:class:`~.apply.RecordApplier`); pause the partitions whose records the
        registry held, and return those records (in order; none applied)."""
        held = self._applier.apply(messages, self._partitions)
        self._hold(held.at, held.reason)
        return held.messages

    def _hold(self, held_at: dict[TopicPartition, int], reason: str) -> None:
        """Pause the partitions whose records are held (resume the others) and schedule the retry."""
        self._resume_held(self._held_tps - held_at.keys())
        if not held_at:
            self._registry_pause.resumed()
            return
        where = ", ".join(f"{t}[{p}]@{offset}" for (t, p), offset in sorted(held_at.items()))
        self._retry_s = self._registry_pause.wait_s(reason, where)
        new = held_at.keys() - self._held_tps
        if new and hasattr(self._consumer, "pause"):
            from confluent_kafka import TopicPartition as KafkaTP

            self._consumer.pause([KafkaTP(t, p) for t, p in new])
        self._held_tps |= new

    def _resume_held(self, tps: set[TopicPartition]) -> None:
        if tps and hasattr(self._consumer, "resume"):
            from confluent_kafka import TopicPartition as KafkaTP

            self._consumer.resume([KafkaTP(t, p) for t, p in tps])
        self._held_tps -= tps

    def _crash_point(self, phase: str) -> None:
        if self._crash_armed:
            faults.reached(CRASH_ENV, phase, self._crash_hits)

    # -- checkpoints --------------------------------------------------------------------------------------

    def checkpoint(self, final: bool = False) -> None:
        """Make everything processed so far durable: side outputs first, then rows + state + offsets."""
        swept_at = time.monotonic()  # idle entities, past their view's ttl: evicted in this commit
        evicted = {tp: gone for tp, p in self._partitions.items() if (gone := p.evict_idle(swept_at, force=final))}
        todo = {
            tp: p
            for tp, p in self._partitions.items()
            if p.next_offset is not None and (p.next_offset != p.committed or tp in evicted)
        }
        if not todo:
            self._mirror.tick(final)
            return
        began = time.perf_counter()
        written_ms = int(time.time() * 1000)
        self._dead_letters.flush()
        self._late.flush()
        if self._offline is not None:
            self._offline.flush(written_ms)
        rows: dict[str, list[WindowRow]] = {}  # by view
        writes = RowWrites(written_ms)
        state: dict[TopicPartition, dict[str, bytes | None]] = {}
        for tp, part in todo.items():
            fields: dict[str, bytes | None] = {}
            for name, gone in evicted.get(tp, {}).items():
                for entity in gone:
                    writes.remove(self._writers[name], entity)
                    fields[f"{name}\x1f{entity}"] = None
            for name, entities in part.dirty.items():
                view_rows = rows.setdefault(name, [])
                writer = self._writers[name]
                table = part.tables.get(name)
                if table is not None:  # a table view: its state is per row key, its rows per entity
                    features = writer.layout.group.features
                    for row_key in table.dirty:
                        fields[f"{name}\x1f{row_key}"] = table.dump(row_key)
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
                    fields[f"{name}\x1f{entity}"] = group_state.dump(entity)
            state[tp] = fields
        self._crash_point("before-commit")
        self._checkpoints.commit(
            {tp: p.epoch for tp, p in todo.items()},
            {tp: p.next_offset for tp, p in todo.items()},  # type: ignore[misc]
            {tp: p.committed for tp, p in todo.items()},
            state,
            writes,
            fenced=self._exactly_once,
        )
        self.last_committed_at = time.perf_counter()
        visible_ms = int(time.time() * 1000)
        for part in todo.values():
            part.committed = part.next_offset
            for entities in part.dirty.values():
                entities.clear()
            for table in part.tables.values():
                table.clean()
        self._crash_point("after-commit")
        self._mirror.committed(todo)
        self._mirror.tick(final)
        if self._on_written is not None and rows:
            self._on_written(rows, visible_ms, time.perf_counter() - began)
