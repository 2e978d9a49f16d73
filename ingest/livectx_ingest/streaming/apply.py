"""Applying consumed records to the feature engine's state, per partition: columnar when a batch qualifies,
else record by record; windowed views and table views (a captured table's changelog) alike.

Split from :mod:`.engine`, which owns the loop, partition ownership and checkpoints: this part only turns
records into state, dirty entities, dead letters, late events and offline rows, so its counters and its
registry holds are what the engine reads back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from livectx import serde
from livectx.cdc.changelog import ChangelogAggregate, ChangelogGroup
from livectx.dead_letter import DeadLetterPublisher
from livectx.errors import RegistryUnavailable, SchemaError
from livectx.events import Event
from livectx.features.batch_apply import SEQ, BatchApplier, EntityOrder
from livectx.features.incremental import GroupState
from livectx.features.spec import FeatureGroup
from livectx.serde_columns import EVENT_TIME_MS, BatchDecoder, column_decoder
from livectx.wire import SchemaCache
from livectx_ingest.streaming.checkpoint import PartitionId
from livectx_ingest.streaming.late import LateEvents
from livectx_ingest.streaming.offline import OfflineRows

log = logging.getLogger(__name__)
#: Partition batches smaller than this are applied event by event: the columnar path has a fixed cost of
#: about 1 ms per feature group and batch (measured at 5,000 events/s: 88 us/event for batches under 50,
#: 17 us at 250-300, against 14-18 us event by event).
COLUMNAR_MIN = 400
#: How often a partition looks for idle entities to evict (:meth:`Partition.evict_idle`): a sweep walks
#: every entity of the partition, so not at every checkpoint.
EVICT_SWEEP_S = 5.0


@dataclass
class Partition:
    """What the engine holds for one assigned source partition."""

    epoch: int
    next_offset: int | None
    states: dict[str, GroupState]
    dirty: dict[str, set[str]] = field(default_factory=dict)
    #: Table views' aggregates (:mod:`livectx.cdc.changelog`), by view; their dirty entities are in ``dirty``.
    tables: dict[str, ChangelogAggregate] = field(default_factory=dict)
    committed: int | None = None
    #: (group, its state, its dirty set, entity field, columns): what ``_process`` touches per event
    lanes: list[tuple[FeatureGroup, GroupState, set[str], str, tuple[str, ...]]] = field(default_factory=list)
    swept_at: float | None = None  # time.monotonic() of the last idle-entity sweep

    def __post_init__(self) -> None:
        for name, state in self.states.items():
            dirty = self.dirty.setdefault(name, set())
            self.lanes.append((state.group, state, dirty, state.group.entity_key, state.columns))
        for name in self.tables:
            self.dirty.setdefault(name, set())

    def evict_idle(self, now_s: float, *, force: bool = False) -> dict[str, list[str]]:
        """Idle entities evicted per windowed view (:meth:`GroupState.evict_idle`), at most every
        ``EVICT_SWEEP_S`` unless ``force``. They leave the dirty sets too: their rows are deleted, not
        written. (Table views are a table's current rows: never evicted.)"""
        if not force and self.swept_at is not None and now_s - self.swept_at < EVICT_SWEEP_S:
            return {}
        self.swept_at = now_s
        evicted = {}
        for name, state in self.states.items():
            gone = state.evict_idle()
            if gone:
                self.dirty[name].difference_update(gone)
                evicted[name] = gone
        return evicted

    def load(self, view: str, key: str, raw: bytes) -> None:
        """Restore one checkpointed state entry: a windowed view's entity, or a table view's row key."""
        if view in self.states:
            self.states[view].load(key, raw)
        elif view in self.tables:
            self.tables[view].load(key, raw)


@dataclass
class Source:
    event_type: type[Event]
    groups: list[FeatureGroup]
    #: Views over a captured table's current rows: a source read by them is a changelog, applied by
    #: :meth:`RecordApplier._process_change` (never windowed: the repo refuses windows over a changelog).
    tables: list[ChangelogGroup] = field(default_factory=list)
    #: The columnar fast path (None where a group or the event type is outside it): batch decoder, and a
    #: batch applier per group.
    decoder: BatchDecoder | None = None
    appliers: dict[str, BatchApplier] = field(default_factory=dict)

    def new_partition(self, epoch: int, next_offset: int | None) -> Partition:
        """Empty state for one of this topic's partitions (:meth:`Partition.load` restores a checkpoint)."""
        states = {g.name: GroupState(g) for g in self.groups}
        tables = {t.name: ChangelogAggregate(t.entity_key, t.columns) for t in self.tables}
        return Partition(epoch, next_offset, states, committed=next_offset, tables=tables)

    def enable_columnar(self) -> None:
        if self.tables:
            return
        appliers = {g.name: BatchApplier.for_group(g, GroupState(g).columns) for g in self.groups}
        decoder = column_decoder(self.event_type)
        keys_are_text = all(self.event_type.model_fields[g.entity_key].annotation is str for g in self.groups)
        if decoder is not None and keys_are_text and all(appliers.values()):
            self.decoder, self.appliers = decoder, appliers  # type: ignore[assignment]


def times_plausible(event_type: type[Event], table: pa.Table, batch: list[Any]) -> bool:
    """Whether every event time of a decoded batch is within its source's bounds of the record's Kafka
    timestamp (:func:`livectx.serde.check_event_time`); if not, the per-record path dead-letters the
    implausible ones with their reason."""
    ahead, behind = event_type.max_ahead_ms, event_type.max_behind_ms
    if ahead is None and behind is None:
        return True
    stamps = pa.array([m.timestamp()[1] for m in batch], pa.int64())
    skew = pc.subtract(table.column(EVENT_TIME_MS).combine_chunks(), stamps)
    skew = pc.if_else(pc.greater(stamps, 0), skew, 0)  # a record without a timestamp has no bound
    if ahead is not None and pc.max(skew).as_py() > ahead:
        return False
    return behind is None or pc.min(skew).as_py() >= -behind


def plan_sources(
    groups: Sequence[FeatureGroup], tables: Sequence[ChangelogGroup], topic_map: Mapping[str, str], *, columnar: bool
) -> dict[str, Source]:
    """The topics the engine reads (after ``topic_map``), each with the views over it; ``columnar`` enables the
    columnar path where every view and the event type qualify."""
    sources: dict[str, Source] = {}
    for group in groups:
        topic = topic_map.get(group.source_topic, group.source_topic)
        sources.setdefault(topic, Source(group.event_type, [])).groups.append(group)
    for table in tables:
        topic = topic_map.get(table.source_topic, table.source_topic)
        sources.setdefault(topic, Source(table.event_type, [])).tables.append(table)
    if columnar:
        for source in sources.values():
            source.enable_columnar()
    return sources


@dataclass
class Held:
    """Records held because the registry did not answer: in order, none applied; where each partition
    stopped (its first held offset), and the registry's error."""

    messages: list[Any]
    at: dict[PartitionId, int]
    reason: str


class RecordApplier:
    """Applies consumed records to partitions' state. ``crash_point(phase)`` is the engine's fault hook."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        *,
        dead_letters: DeadLetterPublisher,
        late: LateEvents,
        offline: OfflineRows | None,
        schemas: SchemaCache | None,
        columnar_min: int,
        crash_point: Callable[[str], None],
        crash_armed: bool,
    ) -> None:
        self.sources = sources
        self._dead_letters = dead_letters
        self._late = late
        self._offline = offline
        self._schemas = schemas
        self._columnar_min = columnar_min
        self._crash_point = crash_point
        self._crash_armed = crash_armed  # read once: the per-event check stays free
        self.events_processed = 0
        self.events_columnar = 0  # of which applied by the columnar path

    def apply(self, messages: list[Any], partitions: Mapping[PartitionId, Partition]) -> Held:
        """Apply consumed messages to ``partitions``: per partition, columnar when the batch qualifies, else
        event by event. Returns what was held because the registry did not answer (none of it applied)."""
        batches: dict[PartitionId, list[Any]] = {}
        ends: dict[PartitionId, Any] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == -191:  # _PARTITION_EOF: the position is the end of the partition
                    ends[(message.topic(), message.partition())] = message
                else:
                    log.warning("consumer error: %s", error)
                continue
            tp = (message.topic(), message.partition())
            batch = batches.get(tp)
            if batch is None:
                batches[tp] = [message]
            else:
                batch.append(message)
        held: list[Any] = []
        held_at: dict[PartitionId, int] = {}
        reason = ""
        for tp, batch in batches.items():
            part = partitions.get(tp)
            if part is None:
                continue  # revoked while the batch was in flight
            if part.next_offset is not None and batch[0].offset() < part.next_offset:
                batch = [m for m in batch if m.offset() >= part.next_offset]  # never apply an offset twice
            source = self.sources[tp[0]]
            if (
                source.decoder is not None
                and len(batch) >= self._columnar_min
                and self._apply_columnar(tp, part, source, batch)
            ):
                continue
            process = self._process_change if source.tables else self._process
            try:
                for message in batch:
                    process(tp, part, source, message)
            except RegistryUnavailable as exc:  # message: the record it stopped at, not applied
                held += batch[batch.index(message) :]
                held_at[tp] = message.offset()
                reason = str(exc)
        for tp, marker in ends.items():
            if tp in held_at:
                held.append(marker)  # the end is behind the held records
                continue
            part = partitions.get(tp)
            end = marker.offset()
            # Past the last record there may be transaction markers (a repartition topic is written in
            # transactions): no record is behind them, so the position moves on and gets checkpointed, and
            # "caught up" (committed == end offset) can hold.
            if part is not None and (part.next_offset is None or end > part.next_offset):
                part.next_offset = end
        return Held(held, held_at, reason)

    def _apply_columnar(self, tp: PartitionId, part: Partition, source: Source, batch: list[Any]) -> bool:
        """Decode and apply ``batch`` as columns; ``False`` (nothing applied) if a record needs the per-record
        path (a dead letter, or anything :mod:`livectx.serde_columns` leaves to pydantic)."""
        table = source.decoder.decode([m.value() for m in batch], self._schemas)  # type: ignore[union-attr]
        if table is None or not times_plausible(source.event_type, table, batch):
            return False
        table = table.append_column(SEQ, pa.array([m.offset() for m in batch], pa.int64()))
        orders: dict[str, EntityOrder] = {}  # one per entity key, shared by the groups keyed by it
        offline = None if self._offline is None else self._offline.for_partition(tp)
        for group, state, dirty, entity_key, _columns in part.lanes:
            order = orders.get(entity_key)
            if order is None:
                order = orders[entity_key] = EntityOrder.of(table, entity_key)
            touched, late = source.appliers[group.name].apply(state, table, order, offline)
            dirty.update(touched)
            for row in late:
                lateness = row.newest_ms - group.window.grace_ms - row.event_ms
                self._late.publish(batch[row.row], group.name, row.window, lateness)
        part.next_offset = batch[-1].offset() + 1
        self.events_processed += len(batch)
        self.events_columnar += len(batch)
        if self._crash_armed:
            for _ in batch:
                self._crash_point("event")
        return True

    def _process(self, tp: PartitionId, part: Partition, source: Source, message: Any) -> None:
        offset = message.offset()
        try:
            event = serde.decode(source.event_type, message.value(), self._schemas)
            ts = event.event_time_ms
            serde.check_event_time(source.event_type, ts, message.timestamp()[1])
        except SchemaError as exc:
            self._dead_letters.publish(message, str(exc))
            part.next_offset = offset + 1
            return
        offline = self._offline
        fields = event.__dict__  # pydantic's field storage: cheaper than getattr per column
        for group, state, dirty, entity_key, columns in part.lanes:
            entity = str(fields[entity_key])
            accepted = state.apply(entity, ts, offset, tuple([fields[c] for c in columns]))
            if accepted:
                dirty.add(entity)
            else:
                newest = state.newest[entity]
                self._late.publish(
                    message, group.name, state.current_window(entity), newest - group.window.grace_ms - ts
                )
            if offline is not None:
                offline.record(state, tp, offset, entity, ts, accepted=accepted)
        part.next_offset = offset + 1
        self.events_processed += 1
        self._crash_point("event")

    def _process_change(self, tp: PartitionId, part: Partition, source: Source, message: Any) -> None:
        """Apply one Debezium change to the source's table views (a tombstone needs nothing: the delete
        before it retracted the row). Not in the offline copy: a table view's history is the table's."""
        offset = message.offset()
        value = message.value()
        if value is not None:
            try:
                event = serde.decode(source.event_type, value, self._schemas)
                serde.check_event_time(source.event_type, event.event_time_ms, message.timestamp()[1])
            except SchemaError as exc:
                self._dead_letters.publish(message, str(exc))
                part.next_offset = offset + 1
                return
            fields, ts = event.__dict__, event.event_time_ms  # (the commit time is the event time)
            for table in source.tables:
                changed = part.tables[table.name].apply(str(fields[table.row_key]), fields, ts)
                part.dirty[table.name].update(changed)
        part.next_offset = offset + 1
        self.events_processed += 1
        self._crash_point("event")
