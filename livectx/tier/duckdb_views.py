"""The archive as DuckDB views, one per topic, over the catalog's current files (nothing is copied).

Each view has the raw columns (``partition``, ``offset``, ``timestamp``, ``event_time``, ``key``,
``value``, ``headers``) and, when the topic's event model is known, every field of that model decoded
from the JSON value with the DuckDB type of the pydantic field (a record in the Confluent wire format is read
past its 5-byte header). A value that is not valid UTF-8 JSON (kept raw by the archive; Avro, too) gives
NULL fields; the raw bytes stay in ``value``.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from livectx.events import Event
from livectx.settings import Settings
from livectx.tier.catalog import event_type_of
from livectx.tier.layout import archive_schema, view_name
from livectx.tier.manifest import Manifest
from livectx.tier.storage import open_storage

if TYPE_CHECKING:
    import duckdb

_SCALARS: dict[type, str] = {str: "VARCHAR", float: "DOUBLE", int: "BIGINT", bool: "BOOLEAN", datetime: "TIMESTAMPTZ"}


def duckdb_type(annotation: Any) -> str:
    """DuckDB type of a pydantic field annotation (``X | None`` is X; ``Literal['a']`` is VARCHAR)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return duckdb_type(inner[0]) if len(inner) == 1 else "VARCHAR"
    if origin is typing.Literal:
        return duckdb_type(type(typing.get_args(annotation)[0]))
    if origin is list:
        return f"{duckdb_type(typing.get_args(annotation)[0])}[]"
    if isinstance(annotation, type):
        for python_type, sql in _SCALARS.items():
            if issubclass(annotation, python_type) and not (python_type is int and annotation is bool):
                return "BOOLEAN" if annotation is bool else sql
    return "VARCHAR"


def event_columns(event_type: type[Event]) -> dict[str, str]:
    """Field name -> DuckDB type, in declaration order (``event_time`` is a raw column already)."""
    return {
        name: duckdb_type(info.annotation) for name, info in event_type.model_fields.items() if name != "event_time"
    }


def attach_archive(
    con: duckdb.DuckDBPyConnection, settings: Settings, topics: Sequence[str] | None = None
) -> list[str]:
    """Create (or replace) one view per archived topic on ``con``; returns the view names created.

    Topics without archived files get no view. The file list is the catalog's at call time: call again
    after the archiver or compaction changed it."""
    storage = open_storage(settings)
    manifest = Manifest(storage)
    if not storage.local:
        con.register_filesystem(storage.fs)
    created = []
    raw = ", ".join(f'"{f.name}"' for f in archive_schema())
    for topic in topics or manifest.topics():
        entries = manifest.current(topic)
        if not entries:
            continue
        files = "[" + ", ".join(_quote(storage.url(e.path)) for e in entries) + "]"
        source = f"read_parquet({files}, hive_partitioning = false, union_by_name = false)"
        event_type = event_type_of(topic, entries)
        select = raw
        if event_type is not None:
            fields = event_columns(event_type)
            structure = _quote(json.dumps(fields))
            # A record in the Confluent wire format carries a 5-byte header (magic byte, schema id) before
            # its JSON: skipped, so a topic that moved to the registry reads on (plain JSON never starts 0x00).
            payload = "CASE WHEN octet_length(value) >= 5 AND value[1:1] = '\\x00'::BLOB THEN value[6:] ELSE value END"
            decoded = (
                f"CASE WHEN json_valid(try(decode({payload}))) THEN json_transform(decode({payload}), {structure}) END"
            )
            reserved = {f.name for f in archive_schema()} | {"topic"}
            picks = ", ".join(f'__e."{name}" AS "{"event_" + name if name in reserved else name}"' for name in fields)
            select = f"{raw}, {picks} FROM (SELECT *, {decoded} AS __e FROM {source})"
            sql = f'CREATE OR REPLACE VIEW "{view_name(topic)}" AS SELECT {select}'
        else:
            sql = f'CREATE OR REPLACE VIEW "{view_name(topic)}" AS SELECT {select} FROM {source}'
        con.execute(sql)
        created.append(view_name(topic))
    return created


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
