"""Writing one archive file: Parquet data first, durable, then its manifest entry.

The order is the exactly-once argument: a crash before the entry leaves an unlisted file that no
reader sees (and a later vacuum deletes); a crash after it leaves a listed, complete file. Callers
commit Kafka offsets only after :func:`write_archive_file` returned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from livectx.tier import faults
from livectx.tier.layout import DAY_MS, data_path, day_string
from livectx.tier.manifest import Manifest, ManifestEntry

if TYPE_CHECKING:
    import pyarrow as pa


def parquet_bytes(table: pa.Table, row_group_records: int) -> bytes:
    """zstd Parquet with row groups of ``row_group_records``, sized for scans."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=row_group_records, write_statistics=True)
    return sink.getvalue().to_pybytes()


def write_archive_file(
    manifest: Manifest,
    topic: str,
    table: pa.Table,
    *,
    start_offset: int,
    end_offset: int,
    row_group_records: int,
    writer: str,
    value_schemas: Mapping[str, int],
    newer_than_ns: int = 0,
) -> ManifestEntry:
    """Write ``table`` (one partition, one event date, offset order) and list it; returns its entry.

    Args:
        start_offset, end_offset: the log positions ``[start, end)`` the file accounts for.
        newer_than_ns: the entry must sort after entries it replaces (compaction passes their newest).
    """
    import pyarrow.compute as pc

    offsets = table.column("offset")
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    partition = table.column("partition")[0].as_py()
    events = pc.min_max(table.column("event_time").cast("int64"))
    stamps = pc.min_max(table.column("timestamp").cast("int64"))
    day = table.column("event_time")[0].value // DAY_MS
    path = data_path(topic, day, partition, first, last)
    data = parquet_bytes(table, row_group_records)
    manifest.storage.put_atomic(path, data)
    faults.reached("after-data")
    entry = ManifestEntry(
        topic=topic,
        partition=partition,
        path=path,
        date=day_string(day),
        first_offset=first,
        last_offset=last,
        start_offset=min(start_offset, first),
        end_offset=max(end_offset, last + 1),
        records=table.num_rows,
        min_event_ms=events["min"].as_py(),
        max_event_ms=events["max"].as_py(),
        min_timestamp_ms=stamps["min"].as_py(),
        max_timestamp_ms=stamps["max"].as_py(),
        bytes=len(data),
        created_ns=max(time.time_ns(), newer_than_ns + 1),
        writer=writer,
        value_schemas=dict(value_schemas),
    )
    manifest.publish(entry)
    faults.reached("after-manifest")
    return entry
