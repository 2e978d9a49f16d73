"""livectx's small extension of Feast's vocabulary: typed helpers that build plain Feast objects.

A repo may use Feast's classes alone (``Entity``, ``KafkaSource``, ``StreamFeatureView`` with
``Aggregation``s, ``FeatureService``, a ``FeatureView`` with a vector field) and livectx runs it as is.
What Feast cannot say travels in the objects' ``tags`` under ``livectx.*`` keys, so ``feast apply``,
``feast plan`` and ``feast ui`` still see every object, and these helpers write those tags for you:

- :func:`stream_source`: a ``KafkaSource`` plus the topic's partitions and retention, the Kafka key, value
  checks, and how far an event time may be from the record's Kafka timestamp;
- :func:`stream_view`: a ``StreamFeatureView`` whose window may also be *sliding* (ending at each event),
  whose features may be ``last`` values or filtered (``where``), with a grace period of its own;
- :func:`memory_view`: a ``FeatureView`` with a vector field over a text source, plus which fields form the
  text, id, tenant, category and metadata, and what marks a delete;
- :func:`decision_service`: a ``FeatureService`` a model decides with: which source's events it scores,
  their id and label fields, and the event fields it reads beside the features
  (:mod:`livectx.repo.decisions`);
- :func:`generator`: a synthetic-traffic function ``livectx produce --generator NAME`` runs.

Every helper validates what it can at once (so ``feast apply`` fails with a message naming the view and
the field); :mod:`livectx.repo.compile` checks the rest, for plain-Feast repos too.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from feast import Entity, FeatureService, FeatureView, Field, FileSource, KafkaSource, StreamFeatureView
from feast.aggregation import Aggregation
from feast.data_format import AvroFormat, JsonFormat, ParquetFormat
from feast.types import Array, Float32, Float64, Int64, String

from livectx.repo.decisions import DEFAULT_ACTION, check_fields, decision_tags
from livectx.repo.schema import CHECKS, SchemaDeclarationError, columns_of
from livectx.repo.sources import COMPATIBILITY_LEVELS, DEFAULT_COMPATIBILITY, DEFAULTS, WIRE_FORMATS

PREFIX = "livectx."
#: Feast's aggregation functions, plus livectx's ``last`` (the newest event's value).
FUNCTIONS = ("count", "sum", "mean", "min", "max", "count_distinct", "last")
RESERVED_SUFFIXES = ("__event_ms", "__written_ms", "__window_end_ms")


@dataclass(frozen=True)
class WindowDecl:
    kind: Literal["tumbling", "hopping", "sliding"]
    size: timedelta
    step: timedelta | None = None
    grace: timedelta | None = None


def tumbling(size: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """Fixed, back-to-back windows (Feast: ``slide_interval`` equal to ``time_window``)."""
    return WindowDecl("tumbling", size, None, grace)


def hopping(size: timedelta, step: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """Overlapping windows of ``size`` starting every ``step`` (Feast: a smaller ``slide_interval``)."""
    return WindowDecl("hopping", size, step, grace)


def sliding(size: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """The ``size`` up to each entity's newest event (livectx extension: Feast has no such window)."""
    return WindowDecl("sliding", size, None, grace)


@dataclass(frozen=True)
class FeatureDecl:
    name: str
    function: str
    column: str | None = None
    where: tuple[str, Any] | None = None
    description: str = ""
    default: float | None = None


def count(name: str, *, where: tuple[str, Any] | None = None, description: str = "") -> FeatureDecl:
    return FeatureDecl(name, "count", None, where, description)


def count_distinct(
    name: str, column: str, *, where: tuple[str, Any] | None = None, description: str = ""
) -> FeatureDecl:
    return FeatureDecl(name, "count_distinct", column, where, description)


def agg(
    name: str,
    function: str,
    column: str,
    *,
    where: tuple[str, Any] | None = None,
    description: str = "",
    default: float | None = None,
) -> FeatureDecl:
    """``sum``, ``mean``, ``min``, ``max`` or ``last`` of ``column``."""
    return FeatureDecl(name, function, column, where, description, default)


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
        PREFIX + "retention_ms": "-1" if retention is None else str(_ms(retention)),
        PREFIX + "allow_non_finite": "true" if allow_non_finite else "false",
        PREFIX + "max_ahead_ms": "" if max_ahead is None else str(_ms(max_ahead)),
        PREFIX + "max_behind_ms": "" if max_behind is None else str(_ms(max_behind)),
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


def stream_view(
    *,
    name: str,
    source: KafkaSource,
    entity: Entity,
    window: WindowDecl,
    features: Sequence[FeatureDecl],
    ttl: timedelta = timedelta(days=2),
    description: str = "",
    offline_dir: Path | None = None,
    owner: str = "",
) -> StreamFeatureView:
    """A ``StreamFeatureView`` the feature engine runs.

    The view's schema is its features (``Int64`` for counts, ``Float64`` otherwise) plus three freshness
    columns (``<view>__event_ms``, ``__written_ms``, ``__window_end_ms``). Its history is the engine's
    offline copy (``offline_dir/<view>``, by default under the data dir): Feast takes a stream view's
    history from its source's ``batch_source``, so the view gets its own ``KafkaSource`` of the same
    topic and format (named ``<view>_source``) whose batch source is that copy.
    """
    join_key = entity.join_key
    columns = {c.name for c in source_columns(source.kafka_options.message_format, source.name)}
    if join_key not in columns:
        raise SchemaDeclarationError(f"view {name}: entity key {join_key!r} is not a field of source {source.name}")
    seen: set[str] = set()
    extensions: dict[str, dict[str, Any]] = {}
    aggregations = []
    for f in features:
        if f.function not in FUNCTIONS:
            raise SchemaDeclarationError(f"view {name}: feature {f.name}: unknown function {f.function!r}")
        if f.name in seen or f.name.endswith(RESERVED_SUFFIXES):
            raise SchemaDeclarationError(f"view {name}: feature name {f.name!r} is repeated or reserved")
        seen.add(f.name)
        for column in (f.column, f.where[0] if f.where else None):
            if column is not None and column not in columns:
                raise SchemaDeclarationError(
                    f"view {name}: feature {f.name}: {column!r} is not a field of source {source.name}"
                )
        aggregations.append(
            Aggregation(
                column=f.column or "",
                function=f.function,
                time_window=window.size,
                slide_interval=window.step or window.size,
                name=f.name,
            )
        )
        extension: dict[str, Any] = {}
        if f.where is not None:
            extension["where"] = list(f.where)
        if f.default is not None:
            extension["default"] = f.default
        if extension:
            extensions[f.name] = extension
    schema = [
        Field(
            name=f.name,
            dtype=Int64 if f.function in ("count", "count_distinct") else Float64,
            description=f.description,
        )
        for f in features
    ]
    schema += [
        entity_field(entity),
        Field(name=f"{name}__event_ms", dtype=Int64, description="Event time of the newest event (epoch ms)."),
        Field(name=f"{name}__written_ms", dtype=Int64, description="When the row was written online (epoch ms)."),
        Field(name=f"{name}__window_end_ms", dtype=Int64, description="End of the window shown (epoch ms)."),
    ]
    tags = {PREFIX + "window": window.kind}
    if window.grace is not None:
        tags[PREFIX + "grace_ms"] = str(_ms(window.grace))
    if extensions:
        tags[PREFIX + "features"] = json.dumps(extensions, sort_keys=True)
    if offline_dir is None:
        from livectx.settings import get_settings

        offline_dir = get_settings().offline_dir
    # each view reads its history from the engine's offline copy of it
    view_source = KafkaSource(
        name=f"{name}_source",
        topic=source.kafka_options.topic,
        timestamp_field=source.timestamp_field,
        message_format=source.kafka_options.message_format,
        batch_source=FileSource(
            name=f"{name}_parquet",
            path=str(offline_dir / name),
            file_format=ParquetFormat(),  # a folder of files: Feast reads it only with the format declared
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
            description=f"Offline copy of {name}: the entity's online row after each event.",
        ),
        watermark_delay_threshold=source.kafka_options.watermark_delay_threshold,
        description=f"{source.name}, as read by {name}",
        tags={**source.tags, PREFIX + "source": source.name},
    )
    return feast_stream_view(
        name=name,
        source=view_source,
        entities=[entity],
        ttl=ttl,
        schema=schema,
        aggregations=aggregations,
        timestamp_field=source.timestamp_field,
        online=True,
        description=description,
        tags=tags,
        owner=owner,
    )


def feast_stream_view(**options: Any) -> StreamFeatureView:
    """Feast's ``StreamFeatureView``, without its "experimental" warning (livectx runs the view itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Stream feature views are experimental", RuntimeWarning)
        return StreamFeatureView(**options)


def memory_view(
    *,
    name: str,
    source: KafkaSource,
    entity: Entity,
    text: Sequence[str],
    tenant: str | None = None,
    category: str | None = None,
    metadata: Iterable[str] = (),
    delete_when: tuple[str, Any] | None = None,
    metric: Literal["cosine", "l2", "inner_product"] = "cosine",
    description: str = "",
) -> FeatureView:
    """A ``FeatureView`` with a vector field: the embedding worker embeds its source's texts.

    Args:
        text: the fields joined (with newlines) into the text that is embedded.
        entity: its join key identifies an item and must be the source's Kafka key; the vector's id is
            ``<source>:<key>``, so replays and retries overwrite.
        tenant / category: fields searches filter on (tenant ``default`` when not declared).
        metadata: fields stored beside the vector and returned with each match.
        delete_when: ``(field, value)`` marking a record that deletes its item; a Kafka tombstone (a key
            with a null value) always does.
    """
    columns = {c.name: c for c in source_columns(source.kafka_options.message_format, source.name)}
    id_field = entity.join_key
    named = [*text, id_field, *(f for f in (tenant, category) if f), *metadata]
    if delete_when is not None:
        named.append(delete_when[0])
    for column in named:
        if column not in columns:
            raise SchemaDeclarationError(f"view {name}: {column!r} is not a field of source {source.name}")
    if not text:
        raise SchemaDeclarationError(f"view {name}: declare at least one text field")
    config = {
        "text": list(text),
        "id": id_field,
        "tenant": tenant,
        "category": category,
        "metadata": list(metadata),
        "delete_when": None if delete_when is None else list(delete_when),
    }
    schema = [
        entity_field(entity),
        Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_search_metric=metric.upper()),
        Field(name="text", dtype=String, description="The embedded text."),
    ]
    return FeatureView(
        name=name,
        source=source,
        entities=[entity],
        schema=schema,
        online=False,
        description=description,
        tags={PREFIX + "memory": json.dumps(config, sort_keys=True)},
    )


def decision_service(
    name: str,
    features: Sequence[FeatureView],
    *,
    scores: KafkaSource,
    id_field: str,
    label: str | None = None,
    inputs: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    action: str = DEFAULT_ACTION,
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
) -> FeatureService:
    """A ``FeatureService`` a model decides with: it scores each event of ``scores`` from the services'
    features about the event's entity, then the event's own ``inputs``.

    Args:
        id_field: names the scored event (live agents' ``Decision.entity_id``).
        label: a boolean field of ``scores``: the ground truth backtests judge against (None: unlabelled).
        inputs: numeric fields of ``scores`` that follow the feature columns in the model's input.
        columns: the features a model reads, in input order (default: every feature of the service).
        action: the ``Decision.action`` live agents record for a positive decision (what shadows compare).
    """
    source = (scores.tags or {}).get(PREFIX + "source", scores.name)
    kinds = {c.name: c.type for c in source_columns(scores.kafka_options.message_format, source)}
    check_fields(name, source, kinds, id_field, label, tuple(inputs), SchemaDeclarationError)
    extra = decision_tags(source, id_field, label, tuple(inputs), action)
    if columns is not None:
        extra[PREFIX + "model_columns"] = ",".join(columns)
    return FeatureService(
        name=name, features=list(features), description=description, tags={**(tags or {}), **extra}, owner=owner
    )


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    function: Callable[..., Any]
    description: str = ""


def generator(name: str, description: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark ``fn(seed, start, rate, **options)`` as a traffic generator of this repo. It yields
    ``(source_name, record)`` pairs in event-time order, each record a dict of the source's fields."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__livectx_generator__ = GeneratorSpec(name, fn, description or (fn.__doc__ or "").strip())  # type: ignore[attr-defined]
        return fn

    return mark


def entity_field(entity: Entity) -> Field:
    from feast.value_type import ValueType

    return Field(name=entity.join_key, dtype=Int64 if entity.value_type == ValueType.INT64 else String)


def source_columns(fmt: Any, source: str) -> tuple[Any, ...]:
    return columns_of(fmt, source)[0]


def _placeholder_batch(name: str, timestamp_field: str) -> FileSource:
    """Feast insists on a batch source for a stream source; livectx's history is its cold tier."""
    return FileSource(
        name=f"{name}_batch",
        path=f"{name}.parquet",
        timestamp_field=timestamp_field,
        description="Placeholder: livectx replays this source's history from its cold tier.",
    )


def _ms(value: timedelta) -> int:
    return int(value / timedelta(milliseconds=1))
