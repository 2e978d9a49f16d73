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

Parts: :mod:`.open_files` (records into files, cutting them), :mod:`.ledger` (where each partition
stands, gaps, Kafka commits). This module keeps the consumer, rebalances, compaction and the metrics file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from livectx.consuming import CaughtUp
from livectx.kafka import consumer, require_reachable
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.tier.catalog import archived_topics
from livectx.tier.compaction import compact
from livectx.tier.manifest import Manifest
from livectx.tier.records import time_field_of
from livectx.tier.storage import open_storage
from livectx_ingest.archive.ledger import Gap, PartitionLedger
from livectx_ingest.archive.open_files import OpenFiles

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger(__name__)


@dataclass
class ArchiveStats:
    consumed: int = 0
    archived: int = 0
    files: int = 0
    bytes: int = 0
    gaps: list[Gap] = field(default_factory=list)  # topic, partition, [from, to)
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


@dataclass(frozen=True)
class MetricsFile:
    """The worker's metrics snapshot on disk (``<state dir>/metrics/<group>-<worker>.json``), rewritten
    atomically every ``interval_s`` for ``livectx`` status commands and the UI to read."""

    path: Path
    interval_s: float

    def write(self, snapshot: Mapping[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(self.path)


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
        self.group = consumer_group
        self.manifest = Manifest(open_storage(settings))
        self.compact_interval_s = compact_interval_s
        self._metrics = MetricsFile(
            settings.stack.state_dir / "metrics" / f"{consumer_group}-{worker_id}.json", metrics_interval_s
        )
        self.stats = ArchiveStats()
        self._stopping = threading.Event()
        self._consumer: Consumer = consumer(
            settings,
            consumer_group,
            **{"client.id": f"livectx-archive-{worker_id}", "enable.partition.eof": True},
        )
        self._ledger = PartitionLedger(self._consumer, self.stats.gaps)
        self._files = OpenFiles(
            settings.tier, self.manifest, self._ledger, self.stats, writer=f"archiver-{worker_id}",
            time_fields={topic: time_field_of(topic) for topic in self.topics}, on_progress=on_progress,
        )  # fmt: skip

    @property
    def metrics_path(self) -> Path:
        return self._metrics.path

    def stop(self) -> None:
        self._stopping.set()

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> ArchiveStats:
        require_reachable(self.settings)
        caught_up = CaughtUp.when(until_caught_up, self.settings, self.group, self.topics)
        targets = None if caught_up is None else caught_up.targets
        compactor = None
        if not until_caught_up and self.compact_interval_s > 0:
            compactor = threading.Thread(target=self._compact_loop, name="livectx-compaction", daemon=True)
            compactor.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        next_metrics = 0.0
        files = self._files
        accept = files.accept  # per record: one call, as before the split
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("archiver: %s -> %s", ", ".join(self.topics), self.manifest.storage.root)
        try:
            while not self._stopping.is_set():
                for message in self._consumer.consume(10_000, 0.1):
                    accept(message, targets)
                files.cut_old()
                now = time.monotonic()
                if caught_up is not None and caught_up.reached():
                    break
                if now >= next_metrics:
                    next_metrics = now + self._metrics.interval_s
                    self._report()
                if deadline is not None and now >= deadline:
                    break
            files.cut_all()
        finally:
            self._stopping.set()
            self._report()
            self._consumer.close()
            CaughtUp.close_if_any(caught_up)
            if compactor is not None:
                compactor.join(30)
        return self.stats

    # -- rebalances -------------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition at max(committed offset, archived end) (:meth:`.PartitionLedger.resume`)."""
        committed = consumer.committed(partitions, timeout=10)
        self._ledger.resume(committed, self.manifest.next_offset)
        log.info("archiver assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in committed))
        consumer.assign(committed)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stopping.is_set():
            return
        for tp in partitions:
            self._files.cut((tp.topic, tp.partition))
            self._ledger.next.pop((tp.topic, tp.partition), None)

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
        snapshot = {"at_ms": int(time.time() * 1000), **self.stats.summary(), "lag": self._ledger.lag()}
        self._metrics.write(snapshot)
        log.info("archiver: %s", snapshot)


def run_archive_worker(settings: Settings, *, until_caught_up: bool = False, **options: object) -> ArchiveStats:
    """Run until SIGTERM/SIGINT (or caught up): the CLI's entry point."""
    worker = ArchiveWorker(settings, **options)  # type: ignore[arg-type]
    with stop_on_signals(worker.stop):
        return worker.run(until_caught_up=until_caught_up)
