"""``stream_source``: a ``KafkaSource`` whose topic livectx creates and whose records it validates.

What Feast's ``KafkaSource`` cannot say (partitions, retention, the Kafka key, value checks, event-time
bounds, the registry's compatibility level, the wire format) travels in its ``livectx.*`` tags.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

from feast import FileSource, KafkaSource
from feast.data_format import AvroFormat, JsonFormat

from livectx.repo.declare_base import PREFIX, ms, source_columns
from livectx.repo.schema import CHECKS, SchemaDeclarationError
from livectx.repo.sources import COMPATIBILITY_LEVELS, DEFAULT_COMPATIBILITY, DEFAULTS, WIRE_FORMATS


def stream_source(
    *,
    name: str,
    topic: str,
    schema: JsonFormat | AvroFormat,
    timestamp_field: str,
    key: str,
    batch_source: Any = None,
    grace: timedelta = timedelta(0),
    partitions: int = DEFAULTS.partitions,
    retention: timedelta | None = DEFAULTS.retention,
    checks: dict[str, dict[str, Any]] | None = None,
    allow_non_finite: bool = False,
    max_ahead: timedelta | None = DEFAULTS.max_ahead,
    max_behind: timedelta | None = DEFAULTS.max_behind,
    description: str = "",
    owner: str = "",
    compatibility: str = DEFAULT_COMPATIBILITY,
    wire: Literal["plain", "confluent"] = "plain",
) -> KafkaSource:
    """A ``KafkaSource`` whose topic livectx creates and whose records it validates.

    Args:
        key: the field the producer uses as the Kafka key (every event of one key is in one partition).
        grace: Feast's ``watermark_delay_threshold``: how late an event may be and still count.
        retention: the topic's ``retention.ms`` (``None``: keep forever).
        checks: per column, pydantic constraints (``ge``, ``gt``, ``le``, ``lt``, ``min_length``,
            ``max_length``); a record breaking one goes to the dead-letter topic.
        allow_non_finite: accept ``Infinity``/``NaN`` (they go to the dead-letter topic by default).
        max_ahead / max_behind: how far an event time may be ahead of / behind the record's Kafka
            timestamp before the record is dead-lettered as implausible (``None``: no bound).
        compatibility: the registry's compatibility level for the source's subject.
        wire: how livectx's producers write the records: ``plain`` (the JSON or Avro payload alone, with a
            ``livectx-schema`` header) or ``confluent`` (the Confluent wire format: magic byte and the
            registered schema's id before the payload, through the registry; ``livectx schemas apply``
            must have registered the schema). Workers read both, per record, whatever this says.
    """
    columns = source_columns(schema, name)
    names = {c.name for c in columns}
    for column in (timestamp_field, key):
        if column not in names:
            raise SchemaDeclarationError(f"source {name}: {column!r} is not a column of its schema")
    for column, rules in (checks or {}).items():
        if column not in names or set(rules) - set(CHECKS):
            raise SchemaDeclarationError(f"source {name}: bad checks for column {column!r}: {rules}")
    if partitions < 1:
        raise SchemaDeclarationError(f"source {name}: partitions must be at least 1")
    if compatibility not in COMPATIBILITY_LEVELS:
        raise SchemaDeclarationError(
            f"source {name}: compatibility {compatibility!r} is not one of {', '.join(COMPATIBILITY_LEVELS)}"
        )
    if wire not in WIRE_FORMATS:
        raise SchemaDeclarationError(f"source {name}: wire {wire!r} is not one of {', '.join(WIRE_FORMATS)}")
    tags = {
        PREFIX + "key": key,
        PREFIX + "partitions": str(partitions),
        PREFIX + "retention_ms": "-1" if retention is None else str(ms(retention)),
        PREFIX + "allow_non_finite": "true" if allow_non_finite else "false",
        PREFIX + "max_ahead_ms": "" if max_ahead is None else str(ms(max_ahead)),
        PREFIX + "max_behind_ms": "" if max_behind is None else str(ms(max_behind)),
        PREFIX + "compatibility": compatibility,
        PREFIX + "wire": wire,
    }
    if checks:
        tags[PREFIX + "checks"] = json.dumps(checks, sort_keys=True)
    return KafkaSource(
        name=name,
        topic=topic,
        timestamp_field=timestamp_field,
        message_format=schema,
        batch_source=batch_source or _placeholder_batch(name, timestamp_field),
        watermark_delay_threshold=grace,
        description=description,
        tags=tags,
        owner=owner,
    )


def _placeholder_batch(name: str, timestamp_field: str) -> FileSource:
    """Feast insists on a batch source for a stream source; livectx's history is its cold tier."""
    return FileSource(
        name=f"{name}_batch",
        path=f"{name}.parquet",
        timestamp_field=timestamp_field,
        description="Placeholder: livectx replays this source's history from its cold tier.",
    )
