"""Background compaction: merge runs of small files into one without changing what a reader sees.

Candidates are current files with fewer than ``compact_below_records`` records. A run is a sequence of
candidates of the same topic, partition and date that are adjacent in the partition's offset order (no
other file and no gap between them), merged while the result stays within ``file_max_records``. The merged file is
written and listed first (its entry overlaps and so replaces the run's entries, atomically, for every
reader), then the run's entries and files are deleted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from livectx.settings import Settings
from livectx.tier.files import write_archive_file
from livectx.tier.manifest import Manifest, ManifestEntry
from livectx.tier.storage import open_storage

log = logging.getLogger(__name__)


@dataclass
class CompactionResult:
    merged_files: int = 0  # small files replaced
    written_files: int = 0  # merged files written
    deleted_files: int = 0  # data files and entries removed by the vacuum


def small_runs(entries: Sequence[ManifestEntry], below: int, max_records: int) -> list[list[ManifestEntry]]:
    """Runs of at least two adjacent small files (same partition and date) to merge, each within
    ``max_records``."""
    runs: list[list[ManifestEntry]] = []
    run: list[ManifestEntry] = []

    def close() -> None:
        if len(run) >= 2:
            runs.append(list(run))
        run.clear()

    for entry in sorted(entries, key=lambda e: (e.partition, e.first_offset)):
        small = entry.records < below
        # Contiguous coverage too: merging across a gap would make the merged entry claim the gap.
        fits = (
            run
            and entry.partition == run[-1].partition
            and entry.date == run[-1].date
            and entry.start_offset <= run[-1].end_offset
        )
        if not small or not fits or sum(e.records for e in run) + entry.records > max_records:
            close()
        if small:
            run.append(entry)
    close()
    return runs


def compact(
    settings: Settings, topics: Sequence[str] | None = None, orphan_grace_s: float = 3600.0
) -> CompactionResult:
    """Merge small files of ``topics`` (default: every archived topic), then vacuum what was replaced."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = Manifest(open_storage(settings))
    tier = settings.tier
    result = CompactionResult()
    for topic in topics or manifest.topics():
        for run in small_runs(manifest.current(topic), tier.compact_below_records, tier.file_max_records):
            try:
                tables = []
                for entry in run:
                    with manifest.storage.open(entry.path) as handle:
                        tables.append(pq.read_table(handle))
            except FileNotFoundError:  # another compactor got there first: its entry already replaced these
                log.info("compaction of %s skipped a run another process merged", topic)
                continue
            schemas: Counter[str] = Counter()
            for entry in run:
                schemas.update(entry.value_schemas)
            write_archive_file(
                manifest,
                topic,
                pa.concat_tables(tables).combine_chunks(),
                start_offset=run[0].start_offset,
                end_offset=run[-1].end_offset,
                row_group_records=tier.row_group_records,
                writer="compaction",
                value_schemas=schemas,
                newer_than_ns=max(e.created_ns for e in run),
            )
            result.merged_files += len(run)
            result.written_files += 1
        result.deleted_files += manifest.vacuum(topic, orphan_grace_s=orphan_grace_s)
    return result
