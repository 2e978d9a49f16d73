"""``cdc_source``: a table of an application database, captured by Debezium, as a declared stream source.

A CDC source is a ``KafkaSource`` like any other (``feast apply`` and ``livectx topics apply`` see it), whose
records are Debezium change events. Its declaration says which table is captured (database, schema, table),
which of its columns (``schema``: a ``JsonFormat`` of the captured columns), and which column is the key;
everything Debezium and ``livectx cdc`` need travels in the ``livectx.cdc`` tag. The event model gets three
columns the envelope supplies (:mod:`livectx.cdc.envelope` flattens each change into the row plus them):

- ``cdc_op``: ``c`` (insert), ``r`` (snapshot read), ``u`` (update) or ``d`` (delete);
- ``cdc_ts``: the change's commit time in epoch milliseconds (``source.ts_ms``), the event time;
- ``cdc_lsn``: the change's position in the write-ahead log (``source.lsn``).

Text, tenant, category and metadata columns are said by the memory view over the source, as for any source
(``memory_view(..., text=[...], metadata=[...])``); a delete needs no ``delete_when``: ``cdc_op = 'd'`` and
Debezium's tombstone both remove the vector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from livectx.repo.schema import SchemaDeclarationError, columns_of

if TYPE_CHECKING:
    from feast.data_format import JsonFormat

    from livectx.repo.declare import FeatureDecl

TAG = "livectx.cdc"
ENVELOPE_TAG = "livectx.envelope"
DEBEZIUM = "debezium"
#: The columns the envelope adds to each captured row (commit time, operation, WAL position).
ENVELOPE_COLUMNS = "cdc_op STRING, cdc_ts BIGINT, cdc_lsn BIGINT DEFAULT NULL"
TIMESTAMP_FIELD = "cdc_ts"
DEFAULT_DATABASE = "livectx_app"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class CdcTable:
    """What ``livectx cdc`` needs to capture one table: read from a source's ``livectx.cdc`` tag."""

    source: str
    topic: str
    database: str
    schema: str
    table: str
    key: str
    columns: tuple[str, ...]
    partitions: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def connector(self) -> str:
        """Connector, publication and slot share one name per source (slot names: ``[a-z0-9_]``)."""
        return "livectx_" + re.sub(r"[^a-z0-9_]", "_", self.source.lower())

    @classmethod
    def from_tags(cls, source: str, topic: str, tags: dict[str, str]) -> CdcTable | None:
        if TAG not in tags:
            return None
        config = json.loads(tags[TAG])
        return cls(
            source=source,
            topic=topic,
            database=config["database"],
            schema=config["schema"],
            table=config["table"],
            key=config["key"],
            columns=tuple(config["columns"]),
            partitions=int(tags.get("livectx.partitions", "3")),
        )


def cdc_source(
    *,
    name: str,
    table: str,
    topic: str,
    schema: JsonFormat,
    key: str,
    database: str = DEFAULT_DATABASE,
    db_schema: str = "public",
    partitions: int = 3,
    retention: timedelta | None = timedelta(days=7),
    description: str = "",
    owner: str = "",
) -> Any:
    """A stream source fed by Debezium from ``database``.``db_schema``.``table``.

    Args:
        schema: a ``JsonFormat`` of the captured columns, in Debezium's JSON: text as ``STRING``, integers
            as ``INT``/``BIGINT``, ``numeric`` and floats as ``DOUBLE``, timestamps as ``BIGINT`` epoch
            milliseconds. Columns a delete's ``before`` image may lack should be ``DEFAULT NULL``.
        key: the table's key column (a single-column primary key): the Kafka key and the entity's id.
        database: the application database the connector reads (the stack's is ``livectx_app``).
    """
    from feast.data_format import JsonFormat

    from livectx.repo.declare import stream_source

    for identifier in (table, db_schema, database):
        if not _IDENTIFIER.match(identifier):
            raise SchemaDeclarationError(f"source {name}: {identifier!r} is not a plain lower-case SQL identifier")
    columns = columns_of(schema, name)[0]
    names = [c.name for c in columns]
    clash = {"cdc_op", "cdc_ts", "cdc_lsn"} & set(names)
    if clash:
        raise SchemaDeclarationError(f"source {name}: column names {sorted(clash)} are reserved for the envelope")
    if key not in names:
        raise SchemaDeclarationError(f"source {name}: key {key!r} is not a column of its schema")
    source = stream_source(
        name=name,
        topic=topic,
        schema=JsonFormat(f"{schema.schema_json}, {ENVELOPE_COLUMNS}"),
        timestamp_field=TIMESTAMP_FIELD,
        key=key,
        partitions=partitions,
        retention=retention,
        # Commit time may be far behind the record's Kafka timestamp (a snapshot reads old rows).
        max_behind=None,
        description=description,
        owner=owner,
    )
    config = {"database": database, "schema": db_schema, "table": table, "key": key, "columns": names}
    source.tags[TAG] = json.dumps(config, sort_keys=True)
    source.tags[ENVELOPE_TAG] = DEBEZIUM
    return source


def table_view(
    *,
    name: str,
    source: Any,
    entity: Any,
    features: Sequence[FeatureDecl],
    ttl: timedelta | None = None,
    description: str = "",
    owner: str = "",
) -> Any:
    """A feature view over a captured table's *current rows*: ``count``, ``sum`` or ``mean`` per entity.

    A ``StreamFeatureView`` over a :func:`cdc_source` whose aggregations have no ``time_window``: the engine
    keeps it from the changelog with retraction (:mod:`livectx.cdc.changelog`), so an update moves a row's
    contribution and a delete removes it, and the online row equals the aggregate recomputed from the
    table. The entity may be the table's key or any other column (a parent row's id, say): the engine
    then re-keys the changes by it. The schema is the features (``Int64`` for a count, ``Float64``
    otherwise) plus ``<view>__event_ms`` (commit time of the entity's newest change) and ``__written_ms``.
    """
    from feast import Field
    from feast.aggregation import Aggregation
    from feast.types import Float64, Int64

    from livectx.repo.declare import entity_field, feast_stream_view

    if TAG not in (source.tags or {}):
        raise SchemaDeclarationError(f"view {name}: source {source.name} is not a cdc_source")
    columns = {c.name for c in columns_of(source.kafka_options.message_format, source.name)[0]}
    if entity.join_key not in columns:
        raise SchemaDeclarationError(f"view {name}: entity key {entity.join_key!r} is not a column of {source.name}")
    for f in features:
        if f.function not in ("count", "sum", "mean") or f.where is not None:
            raise SchemaDeclarationError(
                f"view {name}: feature {f.name}: a table view keeps count, sum and mean (no where): a retraction "
                f"cannot undo a {f.function}"
            )
        if f.column is not None and f.column not in columns:
            raise SchemaDeclarationError(
                f"view {name}: feature {f.name}: {f.column!r} is not a column of {source.name}"
            )
    schema = [
        Field(name=f.name, dtype=Int64 if f.function == "count" else Float64, description=f.description)
        for f in features
    ]
    schema += [
        entity_field(entity),
        Field(name=f"{name}__event_ms", dtype=Int64, description="Commit time of the newest change (epoch ms)."),
        Field(name=f"{name}__written_ms", dtype=Int64, description="When the row was written online (epoch ms)."),
    ]
    return feast_stream_view(
        name=name,
        source=source,
        entities=[entity],
        ttl=ttl or timedelta(0),
        schema=schema,
        aggregations=[Aggregation(column=f.column or "", function=f.function, name=f.name) for f in features],
        timestamp_field=TIMESTAMP_FIELD,
        online=True,
        description=description,
        tags={"livectx.view": "table"},
        owner=owner,
    )
