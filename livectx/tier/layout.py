"""The archive's on-disk contract: file paths and the Arrow schema of every data file.

``<root>/<topic>/date=<YYYY-MM-DD>/partition=<p>/<first_offset:020d>-<last_offset:020d>.parquet``
(date = UTC date of the records' event time), zstd, and the catalog under ``<root>/_manifest/``.
``<root>/_models/`` belongs to the model registry and is never touched here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

MANIFEST_DIR = "_manifest"
RESERVED_DIRS = frozenset({MANIFEST_DIR, "_models"})
SCHEMA_NAME = "livectx.archive.v1"
DAY_MS = 86_400_000


def archive_schema() -> pa.Schema:
    """Columns of every archived file; ``value`` keeps the exact bytes (null = tombstone)."""
    import pyarrow as pa

    utc_ms = pa.timestamp("ms", tz="UTC")
    header = pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())])
    return pa.schema(
        [
            pa.field("partition", pa.int32(), nullable=False),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("timestamp", utc_ms, nullable=False),  # the Kafka record timestamp
            pa.field("event_time", utc_ms, nullable=False),  # the event's own time, else the Kafka timestamp
            pa.field("key", pa.binary()),
            pa.field("value", pa.binary()),
            pa.field("headers", pa.list_(header)),
        ]
    )


def replay_schema() -> pa.Schema:
    """What replay yields: the archive's columns plus the topic (batches may mix topics when merged)."""
    import pyarrow as pa

    schema = archive_schema()
    return schema.insert(0, pa.field("topic", pa.string(), nullable=False))


def day_string(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (epoch milliseconds // DAY_MS)."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def data_path(topic: str, day: int, partition: int, first_offset: int, last_offset: int) -> str:
    return f"{topic}/date={day_string(day)}/partition={partition}/{first_offset:020d}-{last_offset:020d}.parquet"


def entry_path(topic: str, partition: int, created_ns: int, first_offset: int, last_offset: int) -> str:
    return f"{MANIFEST_DIR}/{topic}/{partition}/{created_ns:020d}-{first_offset:020d}-{last_offset:020d}.json"


def view_name(topic: str) -> str:
    """DuckDB view name of a topic: every non-alphanumeric character becomes ``_``."""
    return re.sub(r"[^0-9A-Za-z]", "_", topic)
