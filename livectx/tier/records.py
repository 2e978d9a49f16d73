"""Kafka records to Arrow columns: one implementation for the archiver and replay's hot tail.

A record's ``event_time`` is the top-level ``event_time`` of its JSON value when that decodes to an aware
ISO datetime; otherwise (not JSON, a tombstone, a naive or missing time) the Kafka timestamp. Nothing is
rejected: the archive keeps the exact bytes of every record, malformed ones included.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from livectx.tier.layout import archive_schema

if TYPE_CHECKING:
    import pyarrow as pa
    from confluent_kafka import Message

SCHEMA_HEADER = "livectx-schema"  # serde.SCHEMA_HEADER, repeated to keep this module free of pydantic


def event_time_ms(value: bytes | None, fallback_ms: int) -> int:
    """The event's own time in epoch ms, or ``fallback_ms`` (the Kafka timestamp) when it has none."""
    if not value or value[:1] != b"{":
        return fallback_ms
    try:
        raw = orjson.loads(value).get("event_time")
        if not isinstance(raw, str):
            return fallback_ms
        parsed = datetime.fromisoformat(raw)
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        return fallback_ms
    if parsed.tzinfo is None:
        return fallback_ms
    return int(parsed.timestamp() * 1000)


class RecordColumns:
    """Appends Kafka records of one partition column by column; :meth:`table` builds the Arrow table."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.timestamps: list[int] = []
        self.event_times: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[list[dict[str, Any]] | None] = []
        self.partitions: list[int] = []
        self.value_schemas: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, message: Message, event_ms: int | None = None) -> int:
        """Add one record (``event_ms`` if the caller already decoded it); returns its event time (ms)."""
        _kind, timestamp = message.timestamp()
        value = message.value()
        if event_ms is None:
            event_ms = event_time_ms(value, timestamp)
        self.partitions.append(message.partition())
        self.offsets.append(message.offset())
        self.timestamps.append(timestamp)
        self.event_times.append(event_ms)
        self.keys.append(message.key())
        self.values.append(value)
        headers = message.headers()
        if headers:
            self.headers.append([{"key": k, "value": v} for k, v in headers])
            for k, v in headers:
                if k == SCHEMA_HEADER and v is not None:
                    self.value_schemas[v.decode("utf-8", "replace")] += 1
        else:
            self.headers.append(None)
        return event_ms

    def table(self) -> pa.Table:
        import pyarrow as pa

        schema = archive_schema()
        columns = [
            pa.array(self.partitions, pa.int32()),
            pa.array(self.offsets, pa.int64()),
            pa.array(self.timestamps, pa.int64()).cast(schema.field("timestamp").type),
            pa.array(self.event_times, pa.int64()).cast(schema.field("event_time").type),
            pa.array(self.keys, pa.binary()),
            pa.array(self.values, pa.binary()),
            pa.array(self.headers, schema.field("headers").type),
        ]
        return pa.Table.from_arrays(columns, schema=schema)
