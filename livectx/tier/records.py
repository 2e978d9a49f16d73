"""Kafka records to Arrow columns: one implementation for the archiver and replay's hot tail.

A record's ``event_time`` is its source's timestamp field (``event_time`` unless the repo declares
another, :func:`time_field_of`) in its JSON value, when that is an aware ISO datetime or epoch
milliseconds; otherwise (not JSON, Avro, a tombstone, a naive or missing time) the Kafka timestamp. Nothing is
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


#: Where a record's event time is: the JSON field, and whether it holds epoch milliseconds (else RFC 3339).
TimeField = tuple[str, bool]
DEFAULT_TIME_FIELD: TimeField = ("event_time", False)


def time_field_of(topic: str) -> TimeField:
    """Where ``topic``'s records keep their event time, by the feature repo (``event_time`` if unknown)."""
    try:
        from livectx.repo import current_repo

        spec = current_repo().source_for_topic(topic)
    except Exception:  # no repo here (a bare archive): the platform's default field
        return DEFAULT_TIME_FIELD
    if spec is None:
        return DEFAULT_TIME_FIELD
    columns = {c.name: c for c in spec.model.declared_columns}  # type: ignore[attr-defined]
    column = columns.get(spec.timestamp_field)
    return spec.timestamp_field, column is not None and column.type == "int"


def event_time_ms(value: bytes | None, fallback_ms: int, field: TimeField = DEFAULT_TIME_FIELD) -> int:
    """The event's own time in epoch ms, or ``fallback_ms`` (the Kafka timestamp) when it has none."""
    if not value or value[:1] != b"{":
        return fallback_ms
    name, epoch_ms = field
    try:
        raw = orjson.loads(value).get(name)
        if epoch_ms and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
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

    def __init__(self, time_field: TimeField = DEFAULT_TIME_FIELD) -> None:
        self.time_field = time_field
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
            event_ms = event_time_ms(value, timestamp, self.time_field)
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
