"""Rebuilding window state from the cold tier: the head of a topic that retention took off the log.

A rebuild (:mod:`.rebuild`) replays a topic from the start. When retention has deleted the log's head, that
head is in the Parquet archive (:mod:`livectx.tier`). :func:`replay_cold_head` runs the feature engine
itself over the archived records, through :class:`ArchiveConsumer` (a consumer-shaped adapter over
:func:`livectx.tier.replay.replay`), so window state, online rows, the offline copy, dead letters and late
events come out of the engine's own code, not a second implementation that would have to stay equal to it.
Its final checkpoint stores, per partition, the log's start offset as the position: the worker then goes on
from the log exactly where the archived part ends, one stream without gap or overlap.

Only the part the log no longer holds is read from the archive (``[a, low)`` per partition, where the
archive covers it without a gap up to the log start ``low``); the rest comes from the broker, which is
faster. Positions in neither tier are logged as a warning: rebuilt windows then start after them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from livectx.consuming import PartitionId
from livectx.tier.coverage import merged

if TYPE_CHECKING:
    import pyarrow as pa

    from livectx.tier.manifest import ManifestEntry

log = logging.getLogger(__name__)
_PARTITION_EOF = -191  # librdkafka's _PARTITION_EOF, which the engine reads as "the position is the end"
PROGRESS_S = 10.0


def cold_ranges(
    entries: Iterable[ManifestEntry], lows: Mapping[PartitionId, int]
) -> tuple[dict[PartitionId, tuple[int, int]], list[str]]:
    """Per partition whose log starts past 0, the archived range ``[a, low)`` that leads without a gap up to
    the log start ``low``; and a warning for each partition with positions in neither tier."""
    by_partition: dict[PartitionId, list[tuple[int, int]]] = {}
    for e in entries:
        by_partition.setdefault((e.topic, e.partition), []).append((e.start_offset, e.end_offset))
    ranges: dict[PartitionId, tuple[int, int]] = {}
    warnings = []
    for tp, low in sorted(lows.items()):
        if low <= 0:
            continue
        reaching = [r for r in merged(by_partition.get(tp, [])) if r[0] < low <= r[1]]
        if not reaching:
            warnings.append(
                f"{tp[0]}[{tp[1]}]: the log starts at offset {low} and the cold tier does not reach it: "
                f"rebuilt windows start at offset {low}"
            )
            continue
        start = reaching[0][0]
        ranges[tp] = (start, low)
        if start > 0:
            warnings.append(
                f"{tp[0]}[{tp[1]}]: offsets 0-{start - 1} are in neither the log nor the cold tier: "
                f"rebuilt windows start at offset {start}"
            )
    return ranges, warnings


class _PartitionEnd:
    """The error a consumer with ``enable.partition.eof`` returns at the end of a partition."""

    def code(self) -> int:
        return _PARTITION_EOF


class ArchivedMessage:
    """One archived record with the accessors of a ``confluent_kafka.Message`` the engine and its side
    outputs (dead letters, late events) call."""

    __slots__ = ("_error", "_headers", "_key", "_offset", "_partition", "_timestamp", "_topic", "_value")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        error: _PartitionEnd | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._timestamp, self._key, self._value, self._headers = timestamp_ms, key, value, headers
        self._error = error

    def error(self) -> _PartitionEnd | None:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)  # TIMESTAMP_CREATE_TIME, as archived

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


def messages_of(batch: pa.RecordBatch) -> list[ArchivedMessage]:
    """A replayed batch (:func:`livectx.tier.layout.replay_schema`) as messages."""
    import pyarrow as pa

    names = ("topic", "partition", "offset", "key", "value", "headers")
    columns = [batch.column(name).to_pylist() for name in names]
    columns.append(batch.column("timestamp").cast(pa.int64()).to_pylist())
    return [
        ArchivedMessage(topic, partition, offset, stamp, key, value, [(h["key"], h["value"]) for h in headers or ()])
        for topic, partition, offset, key, value, headers, stamp in zip(*columns, strict=True)
    ]


class ArchiveConsumer:
    """The consumer side of the engine, fed by archived batches: ``subscribe`` assigns ``ends``' partitions,
    ``consume`` returns the records in order, then one partition-end marker per partition at its ``ends``
    offset (the engine stores it as the position), then calls ``on_exhausted`` (the engine's ``stop``)."""

    def __init__(
        self,
        batches: Iterator[pa.RecordBatch],
        ends: Mapping[PartitionId, int],
        keepalive: Callable[[], Any] = lambda: None,
    ) -> None:
        self._batches = batches
        self._ends = dict(ends)
        self._keepalive = keepalive
        self._buffer: list[ArchivedMessage] = []
        self._exhausted = False
        self._position: dict[PartitionId, int] = {}
        self.on_exhausted: Callable[[], None] = lambda: None
        self.records = 0
        self._reported = time.monotonic()

    def subscribe(self, topics: Sequence[str], on_assign: Callable[..., Any], on_revoke: Callable[..., Any]) -> None:
        from confluent_kafka import TopicPartition

        on_assign(self, [TopicPartition(t, p) for (t, p) in self._ends if t in topics])

    def consume(self, num_messages: int, timeout: float = 0.0) -> list[ArchivedMessage]:
        while len(self._buffer) < num_messages and not self._exhausted:
            batch = next(self._batches, None)
            if batch is None:
                self._exhausted = True
                self._buffer += [
                    ArchivedMessage(t, p, end, 0, None, None, None, _PartitionEnd())
                    for (t, p), end in self._ends.items()
                ]
            else:
                self._buffer += messages_of(batch)
        out, self._buffer = self._buffer[:num_messages], self._buffer[num_messages:]
        for m in out:
            self._position[(m.topic(), m.partition())] = m.offset() + 1
        self.records += len(out)
        self._progress()
        if not out and self._exhausted:
            self.on_exhausted()
        return out

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._reported >= PROGRESS_S:
            self._reported = now
            self._keepalive()
            log.info("rebuilding from the cold tier: %d records replayed", self.records)

    def position(self, partitions: Sequence[Any]) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [
            TopicPartition(p.topic, p.partition, self._position.get((p.topic, p.partition), -1001)) for p in partitions
        ]

    def get_watermark_offsets(self, partition: Any, cached: bool = False) -> tuple[int, int]:
        return 0, self._ends.get((partition.topic, partition.partition), 0)

    def assign(self, partitions: Sequence[Any]) -> None:
        """Assignment is fixed at construction (``ends``)."""

    def unassign(self) -> None:
        """Nothing to release."""

    def seek(self, partition: Any) -> None:
        """Never needed: the replay is read once, in order (a fenced commit stops the rebuild)."""

    def commit(self, offsets: Any = None, asynchronous: bool = True) -> None:
        """The engine mirrors offsets to Kafka for lag checks: the worker's live consumer does that."""

    def close(self) -> None:
        """Nothing to close."""


def replay_cold_head(
    settings: Any,
    topics: Sequence[str],
    make_engine: Callable[[Any], Any],
    keepalive: Callable[[], Any] = lambda: None,
) -> int:
    """Run an engine (``make_engine(consumer)``) over the archived head of ``topics`` (see the module doc)
    after their state was reset; returns the records replayed (0 when the log still starts at 0)."""
    from livectx.tier.hot import watermarks
    from livectx.tier.manifest import Manifest
    from livectx.tier.replay import replay
    from livectx.tier.storage import open_storage

    marks = watermarks(settings, list(topics))
    lows = {tp: low for tp, (low, _high) in marks.items() if low > 0}
    if not lows:
        return 0
    manifest = Manifest(open_storage(settings))
    entries = [e for topic in sorted({t for t, _p in lows}) for e in manifest.current(topic)]
    ranges, warnings = cold_ranges(entries, lows)
    for warning in warnings:
        log.warning("rebuilding %s", warning)
    if not ranges:
        return 0
    replayed = sorted({t for t, _p in ranges})
    # One replay per topic, partition after partition; a partition without an archived head reads nothing.
    batches = (
        batch
        for topic in replayed
        for batch in replay(
            settings,
            [topic],
            start={p: ranges[(t, p)][0] for (t, p) in marks if t == topic and (t, p) in ranges},
            end={p: ranges[(t, p)][1] if (t, p) in ranges else 0 for (t, p) in marks if t == topic},
            by="offset",
        )
        if batch.num_rows
    )
    log.warning(
        "rebuilding %s from the cold tier first: %s",
        ", ".join(replayed),
        ", ".join(f"{t}[{p}] offsets {a}-{b - 1}" for (t, p), (a, b) in sorted(ranges.items())),
    )
    consumer = ArchiveConsumer(batches, {tp: r[1] for tp, r in ranges.items()}, keepalive)
    engine = make_engine(consumer)
    consumer.on_exhausted = engine.stop
    began = time.monotonic()
    engine.run()
    log.warning(
        "rebuilt from the cold tier: %d records in %.1f s; the log goes on from there",
        consumer.records - len(ranges),
        time.monotonic() - began,
    )
    return consumer.records - len(ranges)
