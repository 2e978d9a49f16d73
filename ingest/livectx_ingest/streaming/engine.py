"""The streaming feature engine: Kafka events -> windowed aggregations -> Feast's Redis online store.

Loop: consume a batch, decode and validate each event (bad ones to the dead-letter topic), apply it to the
window state of every feature group reading its topic (too-late ones to the late-events topic), and every
``commit_interval_s`` checkpoint: the online row of every entity touched since the last checkpoint, that
state and the next offsets go to Redis in one fenced transaction (:mod:`.checkpoint`; on a Redis Cluster
versioned rows, then per partition: :mod:`.cluster_checkpoint`), after the side outputs (dead letters,
late events, offline Parquet) were acknowledged. Entities idle past their view's ttl are evicted in the
same commit (:meth:`~.apply.Partition.evict_idle`); a Redis outage is waited out (:mod:`.store_outage`).

Parts: :mod:`.apply` (records into state), :mod:`.cadence` (when), :mod:`.commit` (what a checkpoint
writes, in which order), :mod:`.checkpoint` (the stores), :class:`~.online_writer.RowWrites` (the rows'
commands), :mod:`.mirror` (Kafka's copy of the offsets), :mod:`.hold` (partitions held for the registry),
:mod:`.crash` (the exactly-once tests' crash points). This module keeps the loop and partition ownership.

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
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from livectx import tracing
from livectx.cdc.changelog import ChangelogGroup
from livectx.dead_letter import DeadLetterPublisher
from livectx.features.spec import FeatureGroup
from livectx.wire import RegistryPause, SchemaCache
from livectx_ingest.streaming.apply import COLUMNAR_MIN, Partition, RecordApplier, plan_sources
from livectx_ingest.streaming.cadence import COMMIT_INTERVAL_S, MAX_BATCH, CheckpointCadence
from livectx_ingest.streaming.checkpoint import Checkpoints, FencedError, PartitionId, RolledBack, checkpoints_for
from livectx_ingest.streaming.commit import Committer, OnWritten, SideOutputs
from livectx_ingest.streaming.crash import CrashPoints
from livectx_ingest.streaming.hold import RegistryHold
from livectx_ingest.streaming.late import LateEvents
from livectx_ingest.streaming.mirror import OffsetMirror
from livectx_ingest.streaming.offline import OfflineRows
from livectx_ingest.streaming.online_writer import FeastRedisWriter
from livectx_ingest.streaming.stages import StageClock

log = logging.getLogger(__name__)
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
        commit_interval_s: float = COMMIT_INTERVAL_S,
        max_batch: int = MAX_BATCH,
        on_written: OnWritten | None = None,
        columnar: bool = True,
        columnar_min: int = COLUMNAR_MIN,
        schemas: SchemaCache | None = None,
        registry_pause: RegistryPause | None = None,
        tables: Sequence[ChangelogGroup] = (),
        checkpoints: Checkpoints | None = None,
        stages: StageClock | None = None,
    ) -> None:
        """``checkpoints``: where state and offsets are committed (default: ``redis_client``'s, through
        :func:`~.checkpoint.checkpoints_for`; unit tests pass an in-memory one). ``stages``: where each
        record's freshness goes, stage by stage (:mod:`~.stages`; ``livectx bench features``)."""
        self.consumer_group = consumer_group
        self._consumer = consumer
        self._hold = RegistryHold(consumer, registry_pause or RegistryPause(log))
        crash = CrashPoints(CRASH_ENV)
        writers = {g.name: FeastRedisWriter(redis_client, feast_project, g) for g in (*groups, *tables)}  # type: ignore[arg-type]
        self._committer = Committer(
            checkpoints or checkpoints_for(redis_client, consumer_group, crash_point=crash.reached),
            writers, SideOutputs(dead_letters, late, offline), OffsetMirror(consumer), crash.reached,
            fenced=exactly_once, on_written=on_written,
        )  # fmt: skip
        # The columnar path computes the offline copy's per-event rows a batch at a time
        # (livectx.features.running_rows), so a worker writing the copy runs at its speed too.
        sources = plan_sources(groups, tables, topic_map, columnar=columnar)
        #: Turns records into state (schemas: writer schemas of framed records; None: the process-wide
        #: cache over the configured registry).
        self._applier = RecordApplier(
            sources, dead_letters=dead_letters, late=late, offline=offline, schemas=schemas,
            columnar_min=columnar_min, crash_point=crash.reached, crash_armed=crash.armed,
        )  # fmt: skip
        self._cadence = CheckpointCadence(commit_interval_s, time.monotonic())
        self._max_batch = max_batch
        self._stages = stages
        self._partitions: dict[PartitionId, Partition] = {}
        self._stop = threading.Event()
        self._pool: list[Any] = []
        self._kafka_tps: list[Any] = []  # assigned partitions, as confluent_kafka.PartitionId

    @property
    def events_processed(self) -> int:
        return self._applier.events_processed

    @property
    def events_columnar(self) -> int:
        """Of the events processed, those applied by the columnar path."""
        return self._applier.events_columnar

    @property
    def topics(self) -> list[str]:
        return list(self._applier.sources)

    @property
    def first_consumed_at(self) -> float | None:
        """``time.perf_counter()`` of the first record consumed (throughput accounting)."""
        return self._committer.timing.first_consumed_at

    @property
    def last_committed_at(self) -> float | None:
        """``time.perf_counter()`` of the last commit (throughput accounting)."""
        return self._committer.timing.last_committed_at

    def stop(self) -> None:
        self._stop.set()

    # -- partition ownership ------------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self._pool.clear()  # consumed before the rebalance: the new assignment re-reads from its offsets
        self._hold.forget(cancel_retry=True)  # (held records included: a new assignment starts unpaused)
        store = self._committer.store
        tps = [(p.topic, p.partition) for p in partitions]
        epochs = store.claim(tps)
        offsets = store.offsets(tps)
        for p, tp in zip(partitions, tps, strict=True):
            self._partitions[tp] = self._load(tp, epochs[tp], offsets[tp])
            p.offset = OFFSET_BEGINNING if offsets[tp] is None else offsets[tp]
        consumer.assign(partitions)
        self._kafka_tps = [TopicPartition(t, p) for t, p in self._partitions]
        self._committer.mirror.pending = True
        log.info("assigned %s (resuming from %s)", tps, offsets)

    def _load(self, tp: PartitionId, epoch: int, next_offset: int | None) -> Partition:
        part = self._applier.sources[tp[0]].new_partition(epoch, next_offset)
        for view, key, raw in self._committer.store.state(tp):
            part.load(view, key, raw)
        self._committer.outputs.discard_uncommitted(tp, next_offset)
        return part

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._pool.clear()
        self._hold.forget(cancel_retry=False)
        try:
            self.checkpoint(final=True)
        except (FencedError, RolledBack) as exc:  # the next owner resumes from what the store holds
            log.warning("revoked partitions not committed: %s", exc)
            self._drop_uncommitted()
        for p in partitions:
            self._partitions.pop((p.topic, p.partition), None)
        self._kafka_tps = []
        consumer.unassign()

    def _drop_uncommitted(self, reclaim: Sequence[PartitionId] = ()) -> None:
        """After a fenced commit: forget everything since the last commit and reload what we still own;
        claim ``reclaim`` again first (the store rolled back past our claim of them)."""
        self._committer.outputs.drop_buffered()
        if self._stages is not None:  # the records are re-read, and stamped again
            self._stages.dropped()
        self._pool.clear()  # held records too: the seek below re-reads everything after the commit
        self._hold.resume_all()
        store = self._committer.store
        tps = list(self._partitions)
        epochs = store.claim([tp for tp in reclaim if tp in self._partitions])
        offsets = store.offsets(tps)
        for tp in tps:
            old = self._partitions[tp]
            self._partitions[tp] = self._load(tp, epochs.get(tp, old.epoch), offsets[tp])
            from confluent_kafka import OFFSET_BEGINNING, TopicPartition

            # No offset stored: nothing of the partition is in the state, so it is read from the start.
            self._consumer.seek(TopicPartition(tp[0], tp[1], OFFSET_BEGINNING if offsets[tp] is None else offsets[tp]))

    # -- the loop -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; checkpoint on the way out.

        Checkpoint cadence adapts to load (:class:`~.cadence.CheckpointCadence`): every
        ``commit_interval_s`` while the worker keeps up, spaced out within a share of the time under a
        backlog."""
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        gc.freeze()  # everything imported so far (Feast, pandas, ...) is permanent: never walk it again
        cadence = self._cadence
        cadence.started(time.monotonic())
        frozen_at = cadence.last_s
        poll_s = min(0.005, cadence.interval_s)
        pool, stages = self._pool, self._stages
        hold, mirror, timing = self._hold, self._committer.mirror, self._committer.timing
        try:
            while not self._stop.is_set():
                retry = hold.wait_s > 0
                if retry:  # records held for the registry: make the rest durable, wait, then retry them
                    self._checkpoint_or_drop()
                    cadence.started(time.monotonic())
                    self._stop.wait(hold.wait_s)
                    hold.wait_s = 0.0
                timeout = cadence.poll_timeout(time.monotonic(), poll_s)
                # A consumer that cannot pause partitions (a cold-tier replay) is not read while records
                # are held; a Kafka consumer is (its held partitions paused), so the group sees it alive.
                can_read = not retry or hasattr(self._consumer, "pause")
                messages = self._consumer.consume(self._max_batch, timeout=timeout) if can_read else []
                if messages and timing.first_consumed_at is None:
                    timing.first_consumed_at = time.perf_counter()
                if stages is not None:
                    stages.consumed(messages)
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
                    if stages is not None:
                        stages.applied()
                    if backlog:  # the rows just applied count in the next checkpoint's cost and size
                        dirty = self._dirty_rows()
                        if due:
                            cadence.grow(dirty)
                            due = cadence.due(now)
                        due = due or cadence.full(dirty)
                mirror.tick(everything=self._partitions)
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
        registry held (:class:`~.hold.RegistryHold`), and return those records (in order; none applied)."""
        held = self._applier.apply(messages, self._partitions)
        self._hold.hold(held.at, held.reason)
        return held.messages

    # -- checkpoints --------------------------------------------------------------------------------------

    def checkpoint(self, final: bool = False) -> None:
        """Make everything processed so far durable: side outputs first, then rows + state + offsets
        (:meth:`~.commit.Committer.checkpoint`)."""
        self._committer.checkpoint(self._partitions, final)
        if self._stages is not None:
            self._stages.committed()
