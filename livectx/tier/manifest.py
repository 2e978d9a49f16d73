"""The archive's catalog: one small JSON entry per data file under ``<root>/_manifest/``.

An entry is written (atomically) only after its data file is durable, so a listed file is always
complete. Entries are never edited; a newer entry whose records overlap older ones *replaces* them
(a re-written offset range after a crash, or a compacted file): :meth:`Manifest.current` keeps, per
partition, the newest entries first and drops every older entry that overlaps one already kept, so a
reader sees each offset exactly once, whatever crashed where. :meth:`Manifest.vacuum` later deletes
what was replaced, and data files no entry lists (left by a crash before their entry was written).

Entry path: ``_manifest/<topic>/<partition>/<created_ns>-<first>-<last>.json``.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from livectx.tier.layout import MANIFEST_DIR, RESERVED_DIRS, SCHEMA_NAME, entry_path
from livectx.tier.storage import TierStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveFile:
    """The data file itself: where it is (``topic``/``partition``/``path``, its event ``date``), its size
    and format, and when and by whom it was written (``created_ns`` orders entries: newest wins)."""

    topic: str
    partition: int
    path: str
    date: str
    bytes: int
    created_ns: int
    writer: str
    schema: str = SCHEMA_NAME


@dataclass(frozen=True)
class OffsetRange:
    """``first_offset``/``last_offset``: the file's first and last record; ``start_offset``/``end_offset``
    the log positions it accounts for (``[start, end)``: offsets in between without a record, such as
    transaction markers the consumer read past, are covered, not missing)."""

    first_offset: int
    last_offset: int
    start_offset: int
    end_offset: int


@dataclass(frozen=True)
class RecordStats:
    """What the file's records hold: how many, their event-time and Kafka-timestamp ranges, and the
    registry schema ids of their values (subject -> id)."""

    records: int
    min_event_ms: int
    max_event_ms: int
    min_timestamp_ms: int
    max_timestamp_ms: int
    value_schemas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, init=False)
class ManifestEntry:
    """One data file: the file (:class:`ArchiveFile`), the offsets it covers (:class:`OffsetRange`) and
    what its records hold (:class:`RecordStats`).

    Built, read and serialised flat, as the catalog stores it: the constructor takes the eighteen fields
    by name, each is readable as ``entry.<field>``, and :meth:`to_json` writes one flat JSON object."""

    file: ArchiveFile
    offsets: OffsetRange
    stats: RecordStats

    def __init__(
        self,
        topic: str,
        partition: int,
        path: str,
        date: str,
        first_offset: int,
        last_offset: int,
        start_offset: int,
        end_offset: int,
        records: int,
        min_event_ms: int,
        max_event_ms: int,
        min_timestamp_ms: int,
        max_timestamp_ms: int,
        bytes: int,
        created_ns: int,
        writer: str,
        schema: str = SCHEMA_NAME,
        value_schemas: dict[str, int] | None = None,
    ) -> None:
        file = ArchiveFile(topic, partition, path, date, bytes, created_ns, writer, schema)
        offsets = OffsetRange(first_offset, last_offset, start_offset, end_offset)
        schemas = {} if value_schemas is None else value_schemas
        stats = RecordStats(records, min_event_ms, max_event_ms, min_timestamp_ms, max_timestamp_ms, schemas)
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "stats", stats)

    # The flat fields, as the rest of the code and the stored JSON name them.
    @property
    def topic(self) -> str:
        return self.file.topic

    @property
    def partition(self) -> int:
        return self.file.partition

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def date(self) -> str:
        return self.file.date

    @property
    def bytes(self) -> int:
        return self.file.bytes

    @property
    def created_ns(self) -> int:
        return self.file.created_ns

    @property
    def writer(self) -> str:
        return self.file.writer

    @property
    def schema(self) -> str:
        return self.file.schema

    @property
    def first_offset(self) -> int:
        return self.offsets.first_offset

    @property
    def last_offset(self) -> int:
        return self.offsets.last_offset

    @property
    def start_offset(self) -> int:
        return self.offsets.start_offset

    @property
    def end_offset(self) -> int:
        return self.offsets.end_offset

    @property
    def records(self) -> int:
        return self.stats.records

    @property
    def min_event_ms(self) -> int:
        return self.stats.min_event_ms

    @property
    def max_event_ms(self) -> int:
        return self.stats.max_event_ms

    @property
    def min_timestamp_ms(self) -> int:
        return self.stats.min_timestamp_ms

    @property
    def max_timestamp_ms(self) -> int:
        return self.stats.max_timestamp_ms

    @property
    def value_schemas(self) -> dict[str, int]:
        return self.stats.value_schemas

    @property
    def entry_path(self) -> str:
        return entry_path(self.topic, self.partition, self.created_ns, self.first_offset, self.last_offset)

    def to_json(self) -> bytes:
        """One flat object, keys sorted: the catalog's stored form (unchanged by the grouping above)."""
        flat = {**asdict(self.file), **asdict(self.offsets), **asdict(self.stats)}
        return json.dumps(flat, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ManifestEntry:
        return cls(**json.loads(raw))


class Manifest:
    """Reads and writes catalog entries in a :class:`TierStorage`."""

    def __init__(self, storage: TierStorage) -> None:
        self.storage = storage

    def topics(self) -> list[str]:
        return [t for t in self.storage.list_dirs(MANIFEST_DIR) if t not in RESERVED_DIRS]

    def publish(self, entry: ManifestEntry) -> None:
        """List a durable data file. From here on readers see it (and not what it replaces)."""
        self.storage.put_atomic(entry.entry_path, entry.to_json())

    def all_entries(self, topic: str) -> list[ManifestEntry]:
        """Every entry of ``topic``, replaced ones included."""
        paths = [p for p in self.storage.find(f"{MANIFEST_DIR}/{topic}") if p.endswith(".json")]
        return [ManifestEntry.from_json(raw) for raw in self.storage.read_many(paths).values()]

    def current(self, topic: str, entries: list[ManifestEntry] | None = None) -> list[ManifestEntry]:
        """The entries a reader uses, sorted by (partition, first offset): no two overlap."""
        kept, _replaced = resolve(self.all_entries(topic) if entries is None else entries)
        return kept

    def next_offset(self, topic: str) -> dict[int, int]:
        """Per partition, the log position right after the archived data (where archiving resumes)."""
        ends: dict[int, int] = {}
        for entry in self.current(topic):
            ends[entry.partition] = max(ends.get(entry.partition, 0), entry.end_offset)
        return ends

    def vacuum(self, topic: str, orphan_grace_s: float = 3600.0) -> int:
        """Delete replaced entries and their files, and data files no entry lists that are older than
        ``orphan_grace_s`` (younger ones may be a file whose entry is being written right now).
        Returns the number of files deleted."""
        entries = self.all_entries(topic)
        kept, replaced = resolve(entries)
        in_use = {e.path for e in kept}
        listed = {e.path for e in entries}
        doomed = [e.path for e in replaced if e.path not in in_use]
        now = time.time()
        for path in self.storage.find(topic):
            # An unlisted data file (crash before its entry) or a temporary file (crash mid-write).
            unlisted = path.endswith(".tmp") or (path.endswith(".parquet") and path not in listed)
            if unlisted and _older(self.storage, path, now, orphan_grace_s):
                doomed.append(path)
        # Data before entries: an entry must never point at a deleted file.
        self.storage.delete(doomed)
        self.storage.delete(e.entry_path for e in replaced)
        return len(doomed) + len(replaced)


def resolve(entries: Iterable[ManifestEntry]) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """Split entries into (kept, replaced): newest first, an entry overlapping a kept one is replaced."""
    by_partition: dict[int, list[ManifestEntry]] = {}
    for entry in entries:
        by_partition.setdefault(entry.partition, []).append(entry)
    kept: list[ManifestEntry] = []
    replaced: list[ManifestEntry] = []
    for partition in sorted(by_partition):
        firsts: list[int] = []  # kept ranges of this partition, sorted by first offset
        lasts: list[int] = []
        newest_first = sorted(by_partition[partition], key=lambda e: (e.created_ns, e.path), reverse=True)
        for entry in newest_first:
            i = bisect.bisect_right(firsts, entry.last_offset)  # kept ranges starting at or before our last
            if i > 0 and lasts[i - 1] >= entry.first_offset:
                replaced.append(entry)
                continue
            firsts.insert(i, entry.first_offset)
            lasts.insert(i, entry.last_offset)
            kept.append(entry)
    kept.sort(key=lambda e: (e.partition, e.first_offset))
    return kept, replaced


def _older(storage: TierStorage, path: str, now: float, grace_s: float) -> bool:
    try:
        modified = storage.modified_s(path)
    except FileNotFoundError:
        return False
    return modified is not None and now - modified >= grace_s
