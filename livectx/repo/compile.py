"""Feast objects -> what the workers run: sources, feature groups, feature services and memory views.

Plain Feast and livectx's tags (:mod:`livectx.repo.declare`) go through this one path. Everything a
worker needs is checked here, so a mistake fails ``livectx plan``/``feast apply`` with a message naming
the view and the field, never a worker at 3 a.m.:

- a ``KafkaSource`` needs a ``JsonFormat``/``AvroFormat`` schema holding its ``timestamp_field``;
- a ``StreamFeatureView`` needs one window for all its aggregations, known functions, columns of its
  source, and an entity whose join key is a field of the source;
- a feature view with a vector field over a ``KafkaSource`` is a memory view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from livectx.cdc.changelog import RETRACTABLE, ChangelogGroup
from livectx.errors import LivectxError
from livectx.features.spec import Feature, FeatureGroup, Window
from livectx.repo.cdc import DEBEZIUM, ENVELOPE_TAG, CdcTable
from livectx.repo.compiled import ServiceSpec
from livectx.repo.declare import FUNCTIONS, PREFIX, RESERVED_SUFFIXES
from livectx.repo.schema import SchemaDeclarationError, columns_of, event_model
from livectx.repo.sources import (
    COMPATIBILITY_LEVELS,
    DEFAULT_COMPATIBILITY,
    DEFAULTS,
    WIRE_FORMATS,
    RecordFormat,
    SourceSpec,
)
from livectx.vectors.sources import TextSource

_AGGREGATION = {"count_distinct": "distinct_count"}
_INT_TYPES = ("Int32", "Int64")
_FLOAT_TYPES = ("Float32", "Float64")
#: Feast's ``ttl=0`` means "never expires"; readers need a number.
FOREVER = timedelta(days=365 * 100)


class RepoError(LivectxError):
    """The feature repo declares something livectx cannot run; the message names the object."""


def source_name(source: Any) -> str:
    """The declared name of a ``KafkaSource``: its ``livectx.source`` tag if present (the per-view copies
    :func:`~livectx.repo.declare.stream_view` makes describe the same source), else its own."""
    return (source.tags or {}).get(PREFIX + "source", source.name)


def declared_key(source: Any) -> str | None:
    return (source.tags or {}).get(PREFIX + "key") or None


def compile_source(source: Any, key: str) -> SourceSpec:
    """A ``KafkaSource`` as a :class:`SourceSpec`; ``key`` is the field that is the Kafka key."""
    tags = source.tags or {}
    name = source_name(source)
    topic = source.kafka_options.topic
    if not topic:
        raise RepoError(f"source {name}: KafkaSource has no topic")
    columns, wire, avro = columns_of(source.kafka_options.message_format, name)
    model = event_model(
        name,
        columns,
        timestamp_field=source.timestamp_field,
        key_field=key,
        wire_format=wire,  # type: ignore[arg-type]
        checks=json.loads(tags.get(PREFIX + "checks", "{}")),
        allow_non_finite=tags.get(PREFIX + "allow_non_finite") == "true",
        avro_schema=avro,
        max_ahead_ms=_optional_ms(tags, "max_ahead_ms", DEFAULTS.max_ahead),
        max_behind_ms=_optional_ms(tags, "max_behind_ms", DEFAULTS.max_behind),
        envelope=tags.get(ENVELOPE_TAG) or None,
    )
    return SourceSpec(
        name=name,
        topic=topic,
        model=model,
        key_field=key,
        timestamp_field=source.timestamp_field,
        grace=source.kafka_options.watermark_delay_threshold or timedelta(0),
        partitions=int(tags.get(PREFIX + "partitions", DEFAULTS.partitions)),
        retention_ms=_optional_ms(tags, "retention_ms", DEFAULTS.retention) or -1,
        description=source.description or "",
        # (after the others, as before: the tags' errors are raised in the same order)
        record_format=RecordFormat(wire, compatibility=compatibility_of(name, tags), wire=wire_of(name, tags)),
        cdc=CdcTable.from_tags(name, topic, tags),
    )


def is_table_view(view: Any, source: SourceSpec) -> bool:
    """A stream view over a captured table with no window: it aggregates the table's current rows."""
    return source.cdc is not None and bool(view.aggregations) and not any(a.time_window for a in view.aggregations)


def compile_table_view(view: Any, source: SourceSpec) -> ChangelogGroup:
    """A table view (:func:`livectx.repo.cdc.table_view`, or the same by hand) as a :class:`ChangelogGroup`."""
    name = view.name
    if len(view.entity_columns) != 1:
        raise RepoError(f"view {name}: exactly one entity (with one join key) is supported")
    entity_key = view.entity_columns[0].name
    columns = source.model.model_fields
    if entity_key not in columns:
        raise RepoError(f"view {name}: entity key {entity_key!r} is not a column of source {source.name}")
    features = []
    for a in view.aggregations:
        fname = a.resolved_name(None)
        if a.function not in RETRACTABLE:
            raise RepoError(
                f"view {name}: feature {fname}: a view over a table's rows keeps {', '.join(RETRACTABLE)} "
                f"(a retraction cannot undo a {a.function})"
            )
        column = a.column or None
        if a.function != "count" and (column is None or column not in columns):
            raise RepoError(f"view {name}: feature {fname}: {a.function} needs a column of source {source.name}")
        if fname.endswith(RESERVED_SUFFIXES):
            raise RepoError(f"view {name}: feature name {fname!r} is reserved")
        features.append(Feature(fname, a.function, column, description=_description(view, fname)))
    assert source.cdc is not None
    return ChangelogGroup(
        name,
        source.topic,
        source.model,
        view.entities[0] if view.entities else entity_key,
        entity_key,
        source.cdc.key,
        tuple(features),
        view.description or "",
        ttl=view.ttl if view.ttl else FOREVER,
    )


def compatibility_of(source: str, tags: dict[str, str]) -> str:
    """The source's ``livectx.compatibility`` tag, checked (a plain ``KafkaSource`` may set it by hand)."""
    level = tags.get(PREFIX + "compatibility") or DEFAULT_COMPATIBILITY
    if level not in COMPATIBILITY_LEVELS:
        raise RepoError(
            f"source {source}: compatibility {level!r} (tag {PREFIX}compatibility) is not one of "
            f"{', '.join(COMPATIBILITY_LEVELS)}"
        )
    return level


def wire_of(source: str, tags: dict[str, str]) -> str:
    """The source's ``livectx.wire`` tag, checked (default ``plain``)."""
    wire = tags.get(PREFIX + "wire") or "plain"
    if wire not in WIRE_FORMATS:
        raise RepoError(f"source {source}: wire {wire!r} (tag {PREFIX}wire) is not one of {', '.join(WIRE_FORMATS)}")
    return wire


def compile_view(view: Any, source: SourceSpec) -> FeatureGroup:
    """A ``StreamFeatureView`` as a :class:`FeatureGroup` (one window, one entity)."""
    name = view.name
    tags = view.tags or {}
    if source.cdc is not None:  # a window over a changelog would count changes, not the table's rows
        raise RepoError(
            f"view {name}: source {source.name} is a table's changelog (cdc_source); windowed views over it "
            "would count changes, not rows: declare it without a time_window (livectx.repo.cdc.table_view) to "
            "aggregate the table's current rows"
        )
    if not view.aggregations:
        raise RepoError(f"view {name}: a stream feature view needs aggregations")
    windows = {(a.time_window, a.slide_interval) for a in view.aggregations}
    if len(windows) != 1:
        raise RepoError(f"view {name}: all aggregations must share one time_window and slide_interval")
    size, slide = windows.pop()
    if not size:
        raise RepoError(f"view {name}: aggregations need a time_window")
    grace = timedelta(milliseconds=int(tags[PREFIX + "grace_ms"])) if PREFIX + "grace_ms" in tags else source.grace
    kind = tags.get(PREFIX + "window") or ("tumbling" if not slide or slide == size else "hopping")
    if kind not in ("tumbling", "hopping", "sliding"):
        raise RepoError(f"view {name}: window {kind!r} is not tumbling, hopping or sliding")
    try:
        window = Window(kind, size, grace=grace, step=slide if kind == "hopping" else None)  # type: ignore[arg-type]
    except ValueError as exc:
        raise RepoError(f"view {name}: {exc}") from None
    if len(view.entity_columns) != 1:
        raise RepoError(f"view {name}: exactly one entity (with one join key) is supported")
    entity_key = view.entity_columns[0].name
    entity = view.entities[0] if view.entities else entity_key
    extensions = json.loads(tags.get(PREFIX + "features", "{}"))
    dtypes = {f.name: str(f.dtype) for f in view.features}
    columns = source.model.model_fields
    features = []
    for a in view.aggregations:
        fname = a.resolved_name(a.time_window if not a.name else None)
        if a.function not in FUNCTIONS:
            raise RepoError(
                f"view {name}: feature {fname}: unknown function {a.function!r} (one of {', '.join(FUNCTIONS)})"
            )
        if fname.endswith(RESERVED_SUFFIXES):
            raise RepoError(f"view {name}: feature name {fname!r} is reserved")
        column = a.column or None
        if a.function != "count" and column is None:
            raise RepoError(f"view {name}: feature {fname}: {a.function} needs a column")
        extension = extensions.get(fname, {})
        where = tuple(extension["where"]) if extension.get("where") else None
        for field in (column, where[0] if where else None):
            if field is not None and field not in columns:
                raise RepoError(f"view {name}: feature {fname}: {field!r} is not a field of source {source.name}")
        dtype = dtypes.get(fname)
        result = "int" if dtype in _INT_TYPES else "float" if dtype in _FLOAT_TYPES else None
        if result == "int" and a.function not in ("count", "count_distinct"):
            raise RepoError(f"view {name}: feature {fname}: a {a.function} is a float; declare it Float64")
        features.append(
            Feature(
                fname,
                _AGGREGATION.get(a.function, a.function),  # type: ignore[arg-type]
                column,
                where=where,
                description=_description(view, fname),
                default=extension.get("default"),
                dtype=result,  # type: ignore[arg-type]
            )
        )
    if entity_key not in columns:
        raise RepoError(f"view {name}: entity key {entity_key!r} is not a field of source {source.name}")
    if columns[entity_key].annotation is not str:
        raise RepoError(
            f"view {name}: entity key {entity_key} must be a required STRING field of source {source.name} "
            "(the online store keys entities by their string value)"
        )
    try:
        return FeatureGroup(
            name,
            source.topic,
            source.model,
            entity,
            entity_key,
            window,
            tuple(features),
            view.description or "",
            ttl=view.ttl if view.ttl else FOREVER,
        )
    except ValueError as exc:
        raise RepoError(f"view {name}: {exc}") from None


def compile_memory(view: Any, source: SourceSpec) -> TextSource:
    """A feature view with a vector field over a ``KafkaSource`` as a :class:`TextSource`."""
    tags = view.tags or {}
    columns = source.model.model_fields
    if PREFIX + "memory" in tags:
        config = json.loads(tags[PREFIX + "memory"])
    else:  # plain Feast: the view's string fields are the text, the entity key the id
        texts = [f.name for f in view.features if str(f.dtype) == "String" and f.name in columns]
        config = {
            "text": texts,
            "id": view.entity_columns[0].name if view.entity_columns else source.key_field,
            "tenant": "tenant" if "tenant" in columns else None,
            "category": None,
            "metadata": [],
            "delete_when": None,
        }
    if not config["delete_when"] and getattr(source.model, "envelope", None) == DEBEZIUM:
        config["delete_when"] = ["cdc_op", "d"]  # a captured row's delete (its tombstone follows)
    if not config["text"]:
        raise RepoError(f"memory view {view.name}: no text fields (declare them with livectx's memory_view)")
    for field in [*config["text"], config["id"], config["tenant"], config["category"], *config["metadata"]]:
        if field is not None and field not in columns:
            raise RepoError(f"memory view {view.name}: {field!r} is not a field of source {source.name}")
    return TextSource.declared(
        name=view.name,
        topic=source.topic,
        event_type=source.model,
        text_fields=tuple(config["text"]),
        id_field=config["id"],
        tenant_field=config["tenant"],
        category_field=config["category"],
        metadata_fields=tuple(config["metadata"]),
        delete_when=tuple(config["delete_when"]) if config["delete_when"] else None,
    )


def compile_services(services: Iterable[Any], views: set[str]) -> dict[str, ServiceSpec]:
    out: dict[str, ServiceSpec] = {}
    for service in services:
        names = tuple(p.name for p in service.feature_view_projections)
        unknown = [n for n in names if n not in views]
        if unknown:
            raise RepoError(f"feature service {service.name}: {', '.join(unknown)} not a stream view livectx runs")
        columns = tuple(c for c in (service.tags or {}).get(PREFIX + "model_columns", "").split(",") if c)
        out[service.name] = ServiceSpec(service.name, names, service.description or "", columns)
    return out


def is_memory_view(view: Any) -> bool:
    return any(getattr(f, "vector_index", False) for f in view.schema)


def _description(view: Any, feature: str) -> str:
    for f in view.features:
        if f.name == feature:
            return f.description or ""
    return ""


def _optional_ms(tags: dict[str, str], name: str, default: timedelta | None) -> int | None:
    """A ``livectx.<name>`` tag in milliseconds ("" or "-1": no bound), else ``default`` (plain Feast)."""
    text = tags.get(PREFIX + name)
    if text is None:
        return None if default is None else int(default / timedelta(milliseconds=1))
    return int(text) if text and text != "-1" else None


__all__ = ["RepoError", "SchemaDeclarationError", "ServiceSpec", "compile_memory", "compile_source", "compile_view"]
