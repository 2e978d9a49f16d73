"""``livectx ingest run archive``: Kafka topics -> Parquet files in the cold tier, exactly once.

Per assigned partition one file is open in memory; it is cut at ``file_max_records`` records,
``file_max_age_s`` after its first record, when the event date (UTC) changes (a file holds one date), on
a rebalance, on stop, and with ``--until-caught-up`` at the end of the partition. Cutting a file:

    write the Parquet file (durable) -> list it in the manifest (durable) -> commit the next offset

so a crash at any point leaves no gap and no duplicate: an unlisted file is invisible (and vacuumed), a
listed file is never written again because a restarted archiver resumes from
``max(committed offset, archived end)``, and if a range ever is re-written its newer entry replaces the
older one for every reader. Nothing is dead-lettered: the archive keeps the exact bytes of every record.

Gaps: if the broker no longer has the offsets where archiving should resume (they expired while the
archiver was down), the archiver logs an error and the catalog shows the hole (``livectx tier status``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livectx.consuming import CaughtUp, assigned_lag, is_record
from livectx.kafka import consumer, require_reachable
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.tier.catalog import archived_topics
from livectx.tier.compaction import compact
from livectx.tier.files import write_archive_file
from livectx.tier.layout import DAY_MS
from livectx.tier.manifest import Manifest
from livectx.tier.records import RecordColumns, event_time_ms, time_field_of
from livectx.tier.storage import open_storage

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)

Position = tuple[str, int]


@dataclass
class OpenFile:
    """The records of one partition not yet written: they start at ``start_offset`` (a log position)."""

    start_offset: int
    day: int
    opened: float = field(default_factory=time.monotonic)
    columns: RecordColumns = field(default_factory=RecordColumns)


@dataclass
class ArchiveStats:
    consumed: int = 0
    archived: int = 0
    files: int = 0
    bytes: int = 0
    gaps: list[tuple[str, int, int, int]] = field(default_factory=list)  # topic, partition, [from, to)
    started: float = field(default_factory=time.monotonic)
    first_record: float | None = None
    last_write: float | None = None

    @property
    def events_per_s(self) -> float:
        """Archived records per second, from the first record consumed to the last file committed."""
        if self.first_record is None or self.last_write is None:
            return 0.0
        return self.archived / max(1e-9, self.last_write - self.first_record)

    def summary(self) -> dict[str, float | int]:
        return {
            "consumed": self.consumed,
            "archived": self.archived,
            "files": self.files,
            "bytes": self.bytes,
            "gaps": len(self.gaps),
            "events_per_s": self.events_per_s,
        }


class ArchiveWorker:
    def __init__(
        self,
        settings: Settings,
        *,
        topics: Sequence[str] | None = None,
        consumer_group: str = "livectx-archive",
        worker_id: str = "0",
        compact_interval_s: float = 300.0,
        metrics_interval_s: float = 10.0,
        on_progress: Callable[[ArchiveStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = list(topics or archived_topics(current_repo(settings)))
        self._time_fields = {topic: time_field_of(topic) for topic in self.topics}
        self.group = consumer_group
        self.worker_id = worker_id
        self.manifest = Manifest(open_storage(settings))
        self.compact_interval_s = compact_interval_s
        self.metrics_interval_s = metrics_interval_s
        self.metrics_path = settings.stack.state_dir / "metrics" / f"{consumer_group}-{worker_id}.json"
        self.stats = ArchiveStats()
        self._on_progress = on_progress
        self._open: dict[Position, OpenFile] = {}
        self._next: dict[Position, int] = {}  # where the next file of a partition starts
        self._eof: dict[Position, int] = {}  # end of partition seen, no record since
        self._committed: dict[Position, int] = {}
        self._stopping = threading.Event()
        self._consumer: Consumer = consumer(
            settings,
            consumer_group,
            **{"client.id": f"livectx-archive-{worker_id}", "enable.partition.eof": True},
        )

    def stop(self) -> None:
        self._stopping.set()

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> ArchiveStats:
        require_reachable(self.settings)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, self.topics)
        compactor = None
        if not until_caught_up and self.compact_interval_s > 0:
            compactor = threading.Thread(target=self._compact_loop, name="livectx-compaction", daemon=True)
            compactor.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        next_metrics = 0.0
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("archiver: %s -> %s", ", ".join(self.topics), self.manifest.storage.root)
        try:
            while not self._stopping.is_set():
                for message in self._consumer.consume(10_000, 0.1):
                    self._accept(message, caught_up)
                self._cut_old_files()
                now = time.monotonic()
                if caught_up is not None and caught_up.reached():
                    break
                if now >= next_metrics:
                    next_metrics = now + self.metrics_interval_s
                    self._report()
                if deadline is not None and now >= deadline:
                    break
            for position in list(self._open):
                self._cut(position)
        finally:
            self._stopping.set()
            self._report()
            self._consumer.close()
            if compactor is not None:
                compactor.join(30)
        return self.stats

    # -- consuming --------------------------------------------------------------------------------------

    def _accept(self, message: Message, caught_up: CaughtUp | None) -> None:
        from confluent_kafka import KafkaError

        position = (message.topic(), message.partition())
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            self._at_end(position, message.offset(), None if caught_up is None else caught_up.targets)
            return
        if not is_record(message, log):
            return
        self.stats.consumed += 1
        if self.stats.first_record is None:
            self.stats.first_record = time.monotonic()
        self._eof.pop(position, None)
        _kind, timestamp = message.timestamp()
        event_ms = event_time_ms(message.value(), timestamp, self._time_fields[position[0]])
        day = event_ms // DAY_MS
        current = self._open.get(position)
        if current is not None and current.day != day:
            self._cut(position)  # one event date per file
            current = None
        if current is None:
            current = OpenFile(self._start_of_new_file(position, message.offset()), day)
            self._open[position] = current
        current.columns.append(message, event_ms)
        if len(current.columns) >= self.settings.tier.file_max_records:
            self._cut(position)

    def _start_of_new_file(self, position: Position, first_offset: int) -> int:
        """The log position a new file accounts from: where the previous one ended, unless the broker
        dropped the records in between before they were archived (then that is a gap, and it shows)."""
        from confluent_kafka import TopicPartition

        expected = self._next.get(position, 0)
        if first_offset <= expected:
            return first_offset
        low, _high = self._consumer.get_watermark_offsets(TopicPartition(*position), timeout=10, cached=False)
        if low > expected:
            topic, partition = position
            log.error(
                "GAP: %s[%d] offsets %d..%d expired before they were archived (the broker starts at %d)",
                topic, partition, expected, low - 1, low,
            )  # fmt: skip
            self.stats.gaps.append((topic, partition, expected, low))
            return low
        return expected  # the positions in between are transaction markers or aborted records

    def _at_end(self, position: Position, offset: int, targets: dict[Position, int] | None) -> None:
        self._eof[position] = offset
        if targets is None or offset < targets.get(position, 0):
            return
        if position in self._open:
            self._cut(position)  # caught up: write what is open now instead of waiting for its age
        elif offset > self._committed.get(position, -1) and offset > self._next.get(position, 0):
            self._next[position] = offset  # only markers since the last file
            self._commit(position, offset)

    def _cut_old_files(self) -> None:
        now = time.monotonic()
        max_age = self.settings.tier.file_max_age_s
        for position in [p for p, f in self._open.items() if now - f.opened >= max_age]:
            self._cut(position)

    def _cut(self, position: Position) -> None:
        """Write the partition's open file, list it, then commit: the only place offsets are committed."""
        current = self._open.pop(position, None)
        if current is None or not len(current.columns):
            return
        last = current.columns.offsets[-1]
        end = max(last + 1, self._eof.get(position, 0))  # read past trailing markers: they are covered
        entry = write_archive_file(
            self.manifest,
            position[0],
            current.columns.table(),
            start_offset=current.start_offset,
            end_offset=end,
            row_group_records=self.settings.tier.row_group_records,
            writer=f"archiver-{self.worker_id}",
            value_schemas=current.columns.value_schemas,
        )
        self._next[position] = entry.end_offset
        self._commit(position, entry.end_offset)
        self.stats.archived += entry.records
        self.stats.files += 1
        self.stats.bytes += entry.bytes
        self.stats.last_write = time.monotonic()
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _commit(self, position: Position, offset: int) -> None:
        from confluent_kafka import TopicPartition

        self._consumer.commit(offsets=[TopicPartition(position[0], position[1], offset)], asynchronous=False)
        self._committed[position] = offset

    # -- rebalances -------------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition at max(committed offset, archived end): a file listed just before a crash
        (offsets not yet committed) is never written twice."""
        from confluent_kafka import OFFSET_BEGINNING

        committed = consumer.committed(partitions, timeout=10)
        archived: dict[str, dict[int, int]] = {}
        for tp in committed:
            if tp.topic not in archived:
                archived[tp.topic] = self.manifest.next_offset(tp.topic)
            known = [o for o in (tp.offset, archived[tp.topic].get(tp.partition, -1)) if o >= 0]
            position = (tp.topic, tp.partition)
            if known:
                tp.offset = max(known)
                self._next[position] = tp.offset
            else:
                tp.offset = OFFSET_BEGINNING
                self._next[position] = 0
        log.info("archiver assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in committed))
        consumer.assign(committed)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stopping.is_set():
            return
        for tp in partitions:
            self._cut((tp.topic, tp.partition))
            self._next.pop((tp.topic, tp.partition), None)

    # -- background -------------------------------------------------------------------------------------

    def _compact_loop(self) -> None:
        while not self._stopping.wait(self.compact_interval_s):
            try:
                result = compact(self.settings, self.topics)
                if result.written_files:
                    log.info("compaction merged %d small files into %d", result.merged_files, result.written_files)
            except Exception:  # never stops archiving; retried at the next interval
                log.exception("compaction failed; retrying in %.0fs", self.compact_interval_s)

    def _report(self) -> None:
        snapshot = {"at_ms": int(time.time() * 1000), **self.stats.summary(), "lag": self._lag()}
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.metrics_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(self.metrics_path)
        log.info("archiver: %s", snapshot)

    def _lag(self) -> int | None:
        return assigned_lag(self._consumer, self._committed)


def run_archive_worker(settings: Settings, *, until_caught_up: bool = False, **options: object) -> ArchiveStats:
    """Run until SIGTERM/SIGINT (or caught up): the CLI's entry point."""
    worker = ArchiveWorker(settings, **options)  # type: ignore[arg-type]
    with stop_on_signals(worker.stop):
        return worker.run(until_caught_up=until_caught_up)
