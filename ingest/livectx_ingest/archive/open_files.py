"""The archiver's open files, one per assigned partition, and cutting them.

A file is cut at ``file_max_records`` records, ``file_max_age_s`` after its first record, when the event
date (UTC) changes (a file holds one date), and at the end of a partition when catching up. Cutting is
the only place offsets are committed, in the order exactly-once depends on:

    write the Parquet file (durable) -> list it in the manifest (durable) -> commit the next offset

Split from :mod:`.worker`, which owns the consumer, rebalances and the background work: this part owns
the per-record path, so it is kept to a few dict operations per record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx.consuming import PartitionId, skip_client_error
from livectx.settings import TierSettings
from livectx.tier.files import write_archive_file
from livectx.tier.layout import DAY_MS
from livectx.tier.manifest import Manifest
from livectx.tier.records import RecordColumns, TimeField, event_time_ms
from livectx_ingest.archive.ledger import PartitionLedger

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger(__name__)
_PARTITION_EOF = -191  # confluent_kafka.KafkaError._PARTITION_EOF


@dataclass
class OpenFile:
    """The records of one partition not yet written: they start at ``start_offset`` (a log position)."""

    start_offset: int
    day: int
    opened: float = field(default_factory=time.monotonic)
    columns: RecordColumns = field(default_factory=RecordColumns)


class OpenFiles:
    """Per partition: the open file, and the end of the partition when it was reached with no record since.

    ``stats`` is the worker's :class:`~.worker.ArchiveStats` (counted here); ``on_progress(stats)`` is
    called after every file committed."""

    def __init__(
        self,
        tier: TierSettings,
        manifest: Manifest,
        ledger: PartitionLedger,
        stats: Any,
        *,
        writer: str,
        time_fields: Mapping[str, TimeField],
        on_progress: Callable[[Any], None] | None,
    ) -> None:
        self._tier = tier
        self._manifest = manifest
        self._ledger = ledger
        self._stats = stats
        self._writer = writer
        self._time_fields = time_fields
        self._on_progress = on_progress
        self.open: dict[PartitionId, OpenFile] = {}
        self._eof: dict[PartitionId, int] = {}  # end of partition seen, no record since

    def accept(self, message: Message, targets: dict[PartitionId, int] | None) -> None:
        """One consumed message: a record goes into its partition's open file; an end-of-partition event
        may cut it (``targets``: the log ends to catch up to, with ``--until-caught-up``)."""
        position = (message.topic(), message.partition())
        error = message.error()  # once per record
        if error is not None:
            if error.code() == _PARTITION_EOF:
                self.at_end(position, message.offset(), targets)
            else:
                skip_client_error(error, log)
            return
        stats = self._stats
        stats.consumed += 1
        if stats.first_record is None:
            stats.first_record = time.monotonic()
        self._eof.pop(position, None)
        _kind, timestamp = message.timestamp()
        event_ms = event_time_ms(message.value(), timestamp, self._time_fields[position[0]])
        day = event_ms // DAY_MS
        current = self.open.get(position)
        if current is not None and current.day != day:
            self.cut(position)  # one event date per file
            current = None
        if current is None:
            current = OpenFile(self._ledger.start_of_new_file(position, message.offset()), day)
            self.open[position] = current
        current.columns.append(message, event_ms)
        if len(current.columns) >= self._tier.file_max_records:
            self.cut(position)

    def at_end(self, position: PartitionId, offset: int, targets: dict[PartitionId, int] | None) -> None:
        ledger = self._ledger
        self._eof[position] = offset
        if targets is None or offset < targets.get(position, 0):
            return
        if position in self.open:
            self.cut(position)  # caught up: write what is open now instead of waiting for its age
        elif offset > ledger.committed.get(position, -1) and offset > ledger.next.get(position, 0):
            ledger.next[position] = offset  # only markers since the last file
            ledger.commit(position, offset)

    def cut_old(self) -> None:
        """Cut the files open for ``file_max_age_s`` or longer."""
        now = time.monotonic()
        max_age = self._tier.file_max_age_s
        for position in [p for p, f in self.open.items() if now - f.opened >= max_age]:
            self.cut(position)

    def cut_all(self) -> None:
        for position in list(self.open):
            self.cut(position)

    def cut(self, position: PartitionId) -> None:
        """Write the partition's open file, list it, then commit: the only place offsets are committed."""
        current = self.open.pop(position, None)
        if current is None or not len(current.columns):
            return
        last = current.columns.offsets[-1]
        end = max(last + 1, self._eof.get(position, 0))  # read past trailing markers: they are covered
        entry = write_archive_file(
            self._manifest,
            position[0],
            current.columns.table(),
            start_offset=current.start_offset,
            end_offset=end,
            row_group_records=self._tier.row_group_records,
            writer=self._writer,
            value_schemas=current.columns.value_schemas,
        )
        self._ledger.next[position] = entry.end_offset
        self._ledger.commit(position, entry.end_offset)
        stats = self._stats
        stats.archived += entry.records
        stats.files += 1
        stats.bytes += entry.bytes
        stats.last_write = time.monotonic()
        if self._on_progress is not None:
            self._on_progress(stats)
