"""``stream_view`` and ``memory_view``: the two kinds of view livectx runs from a stream source.

A stream view is the feature engine's (windowed aggregations, online and offline); a memory view is the
embedding worker's (a vector field over a text). Both are plain Feast views with ``livectx.*`` tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from feast import Entity, FeatureView, Field, FileSource, KafkaSource, StreamFeatureView
from feast.aggregation import Aggregation
from feast.data_format import ParquetFormat
from feast.types import Array, Float32, Float64, Int64, String

from livectx.repo.declare_base import PREFIX, entity_field, feast_stream_view, ms, source_columns
from livectx.repo.declare_windows import FUNCTIONS, RESERVED_SUFFIXES, FeatureDecl, WindowDecl
from livectx.repo.schema import SchemaDeclarationError


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
        tags[PREFIX + "grace_ms"] = str(ms(window.grace))
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
