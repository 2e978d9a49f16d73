"""Event schemas from a Feast ``KafkaSource``'s ``message_format``: the columns, and a strict model of them.

Feast says what a stream's records look like in two ways, and both are read here:

- ``JsonFormat(schema_json)``: a Spark-DDL column list, e.g. ``"customer_id STRING, amount DOUBLE, ts TIMESTAMP"``.
  Types: ``STRING``, ``BOOLEAN``, ``INT``/``INTEGER``/``BIGINT``/``LONG``/``SMALLINT``/``TINYINT``,
  ``DOUBLE``/``FLOAT``/``DECIMAL``, ``TIMESTAMP`` (an RFC 3339 string with an offset). Unlike Spark, a
  column is **required** (present and not null) unless it has a ``DEFAULT``: ``DEFAULT NULL`` makes it
  nullable, ``DEFAULT 'x'``/``DEFAULT 0`` fills a missing value. A record is a contract, not a guess.
- ``AvroFormat(schema_json)``: an Avro record schema. ``["null", T]`` unions are nullable, ``default``
  fills a missing field, ``long``/``int`` with ``logicalType`` ``timestamp-millis``/``-micros`` are
  times, ``enum`` is a string.

The source's ``timestamp_field`` is the event time. Typed as a timestamp it is read as such; typed as an
integer it is epoch milliseconds. The model every worker validates with is a strict pydantic
:class:`~livectx.events.Event` subclass built from these columns (:func:`event_model`), so the per-record
path, the columnar fast path (:mod:`livectx.serde_columns`) and the dead-letter reasons are today's.
Non-finite numbers (``Infinity``, ``NaN``, ``1e400``) are rejected unless a source allows them.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field, PlainSerializer, create_model

from livectx.errors import LivectxError
from livectx.events import Event

ColumnType = Literal["string", "int", "float", "bool", "timestamp"]
_DDL_TYPES: dict[str, ColumnType] = {
    "STRING": "string",
    "VARCHAR": "string",
    "CHAR": "string",
    "BOOLEAN": "bool",
    "BOOL": "bool",
    "TINYINT": "int",
    "SMALLINT": "int",
    "INT": "int",
    "INTEGER": "int",
    "BIGINT": "int",
    "LONG": "int",
    "FLOAT": "float",
    "DOUBLE": "float",
    "DECIMAL": "float",
    "TIMESTAMP": "timestamp",
}
_AVRO_TYPES: dict[str, ColumnType] = {
    "string": "string",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
}
_PY_TYPES: dict[ColumnType, type] = {"string": str, "int": int, "float": float, "bool": bool}


class _Missing(enum.Enum):
    """No default declared: an enum member, so that a pickled :class:`Column` keeps it (by reference)."""

    MISSING = "missing"


_MISSING = _Missing.MISSING
#: Value checks a source may declare per column (livectx extension): pydantic's own constraint names.
CHECKS = ("ge", "gt", "le", "lt", "min_length", "max_length")


class SchemaDeclarationError(LivectxError):
    """A declared schema cannot be read; the message names the source and the column."""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING and not self.nullable

    @property
    def has_default(self) -> bool:
        """Whether a missing value is filled (``DEFAULT NULL`` counts: the default is ``None``)."""
        return self.default is not _MISSING


def parse_ddl(ddl: str, source: str = "?") -> tuple[Column, ...]:
    """Columns of a Spark-DDL list (Feast's ``JsonFormat.schema_json``)."""
    columns: list[Column] = []
    for part in _split_top_level(ddl):
        m = re.match(r"^`?([A-Za-z_][A-Za-z0-9_]*)`?\s*:?\s+([A-Za-z]+)(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?(.*)$", part)
        if not m:
            raise SchemaDeclarationError(f"source {source}: cannot read column {part!r} (expected 'name TYPE')")
        name, type_name, rest = m.group(1), m.group(2).upper(), m.group(5)
        if type_name not in _DDL_TYPES:
            raise SchemaDeclarationError(
                f"source {source}: column {name} has type {type_name}, not one of {', '.join(sorted(_DDL_TYPES))}"
            )
        kind = _DDL_TYPES[type_name]
        nullable, default = False, _MISSING
        rest = re.sub(r"(?i)\bCOMMENT\s+'(?:[^']|'')*'", "", rest).strip()
        rest = re.sub(r"(?i)^NOT\s+NULL\b", "", rest).strip()
        dm = re.match(r"(?i)^DEFAULT\s+(.+)$", rest)
        if dm:
            default = _ddl_literal(dm.group(1).strip(), kind, source, name)
            nullable = default is None
        elif rest:
            raise SchemaDeclarationError(f"source {source}: column {name}: cannot read {rest!r}")
        columns.append(Column(name, kind, nullable, default))
    _no_duplicates(columns, source)
    return tuple(columns)


def parse_avro(schema_json: str, source: str = "?") -> tuple[Column, ...]:
    """Columns of an Avro record schema (Feast's ``AvroFormat.schema_json``)."""
    try:
        schema = json.loads(schema_json)
    except json.JSONDecodeError as exc:
        raise SchemaDeclarationError(f"source {source}: the Avro schema is not JSON ({exc})") from None
    if not isinstance(schema, dict) or schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise SchemaDeclarationError(f"source {source}: the Avro schema must be a record with fields")
    columns = []
    for field in schema["fields"]:
        name, avro_type = field.get("name"), field.get("type")
        nullable = isinstance(avro_type, list) and "null" in avro_type
        if isinstance(avro_type, list):
            rest = [t for t in avro_type if t != "null"]
            if len(rest) != 1:
                raise SchemaDeclarationError(f'source {source}: field {name}: only ["null", T] unions are supported')
            avro_type = rest[0]
        kind = _avro_kind(avro_type, source, name)
        default = field.get("default", _MISSING)
        columns.append(Column(name, kind, nullable, default))
    _no_duplicates(columns, source)
    return tuple(columns)


def columns_of(message_format: Any, source: str = "?") -> tuple[tuple[Column, ...], str, dict[str, Any] | None]:
    """A Feast ``message_format``'s columns, wire format (``"json"``/``"avro"``) and parsed Avro schema."""
    from feast.data_format import AvroFormat, JsonFormat

    if isinstance(message_format, AvroFormat):
        return parse_avro(message_format.schema_json, source), "avro", json.loads(message_format.schema_json)
    if isinstance(message_format, JsonFormat):
        return parse_ddl(message_format.schema_json, source), "json", None
    raise SchemaDeclarationError(
        f"source {source}: message_format must be JsonFormat or AvroFormat, not {type(message_format).__name__}"
    )


def _avro_kind(avro_type: Any, source: str, name: str) -> ColumnType:
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
            return "timestamp"
        if avro_type.get("type") == "enum":
            return "string"
        avro_type = avro_type.get("type")
    if avro_type not in _AVRO_TYPES:
        raise SchemaDeclarationError(
            f"source {source}: field {name} has Avro type {avro_type!r}, not one of {', '.join(_AVRO_TYPES)}"
        )
    return _AVRO_TYPES[avro_type]


def event_model(
    source: str,
    columns: tuple[Column, ...],
    *,
    timestamp_field: str,
    key_field: str,
    wire_format: Literal["json", "avro"],
    checks: dict[str, dict[str, Any]] | None = None,
    allow_non_finite: bool = False,
    avro_schema: dict[str, Any] | None = None,
    max_ahead_ms: int | None = None,
    max_behind_ms: int | None = None,
    envelope: str | None = None,
) -> type[Event]:
    """A strict :class:`Event` model of the columns. The event time is the model's ``event_time`` (read
    from ``timestamp_field``, under that name on the wire); ``key_field`` is the Kafka key."""
    by_name = {c.name: c for c in columns}
    if timestamp_field not in by_name:
        raise SchemaDeclarationError(f"source {source}: timestamp_field {timestamp_field!r} is not a column")
    if key_field not in by_name:
        raise SchemaDeclarationError(f"source {source}: key field {key_field!r} is not a column")
    if not by_name[key_field].required:
        raise SchemaDeclarationError(f"source {source}: key field {key_field} must be required (no DEFAULT, not null)")
    checks = checks or {}
    for name, rules in checks.items():
        if name not in by_name:
            raise SchemaDeclarationError(f"source {source}: checks name column {name!r}, which is not declared")
        unknown = set(rules) - set(CHECKS)
        if unknown:
            raise SchemaDeclarationError(f"source {source}: column {name}: unknown checks {sorted(unknown)}")
    stamp = by_name[timestamp_field]
    if stamp.type not in ("timestamp", "int") or stamp.nullable:
        raise SchemaDeclarationError(
            f"source {source}: timestamp_field {timestamp_field} must be a required TIMESTAMP or epoch-ms integer"
        )
    fields: dict[str, Any] = {}
    for column in columns:
        if column.name == timestamp_field:
            continue
        if column.name in ("event_time", "key", "event_time_ms", "model_config") or column.name.startswith("_"):
            raise SchemaDeclarationError(f"source {source}: column name {column.name!r} is reserved")
        annotation: Any = AwareDatetime if column.type == "timestamp" else _PY_TYPES[column.type]
        if column.nullable:
            annotation = annotation | None
        default = ... if column.default is _MISSING else column.default
        fields[column.name] = (annotation, Field(default, **checks.get(column.name, {})))
    stamp_annotation: Any = AwareDatetime
    if stamp.type == "int":
        stamp_annotation = Annotated[
            AwareDatetime, BeforeValidator(_from_epoch_ms), PlainSerializer(_to_epoch_ms, return_type=int)
        ]
    if timestamp_field == "event_time":
        fields["event_time"] = (stamp_annotation, ...)
    else:
        fields["event_time"] = (
            stamp_annotation,
            Field(..., validation_alias=timestamp_field, serialization_alias=timestamp_field),
        )
    # Class variables and config go on a per-source base: pydantic reads both when the class is created.
    base = type(
        f"_{_class_name(source)}Base",
        (_DeclaredEvent,),
        {
            "model_config": ConfigDict(
                frozen=True, extra="forbid", strict=True, allow_inf_nan=allow_non_finite, serialize_by_alias=True
            ),
            "__module__": __name__,
            "schema_name": source,
            "key_field": key_field,
            "wire_format": wire_format,
            "wire_timestamp_field": timestamp_field,
            "avro_schema": avro_schema,
            "declared_columns": columns,
            "max_ahead_ms": max_ahead_ms,
            "max_behind_ms": max_behind_ms,
            "envelope": envelope,
        },
    )
    model: type[Event] = create_model(_class_name(source), __base__=base, __module__=__name__, **fields)
    return model


class _DeclaredEvent(Event):
    """Base of the models built from declarations: what :mod:`livectx.serde` needs to read their wire."""

    wire_format: ClassVar[str] = "json"
    wire_timestamp_field: ClassVar[str] = "event_time"
    avro_schema: ClassVar[dict[str, Any] | None] = None
    declared_columns: ClassVar[tuple[Column, ...]] = ()
    #: ``"debezium"``: records are change events, flattened by :mod:`livectx.cdc.envelope` before validation.
    envelope: ClassVar[str | None] = None


def _from_epoch_ms(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    return value


def _to_epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _class_name(source: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", source) if part) or "Declared"


def _split_top_level(ddl: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, []
    for char in ddl:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "(<":
            depth += 1
        elif not quoted and char in ")>":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _ddl_literal(text: str, kind: ColumnType, source: str, name: str) -> Any:
    if text.upper() == "NULL":
        return None
    try:
        if kind == "string" and text.startswith("'") and text.endswith("'"):
            return text[1:-1].replace("''", "'")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool" and text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
    except ValueError:
        pass
    raise SchemaDeclarationError(f"source {source}: column {name}: default {text} is not a {kind} literal")


def _no_duplicates(columns: list[Column], source: str) -> None:
    seen: set[str] = set()
    for c in columns:
        if c.name in seen:
            raise SchemaDeclarationError(f"source {source}: column {c.name} is declared twice")
        seen.add(c.name)


def is_declared(model: type) -> bool:
    """Whether ``model`` is a class :func:`event_model` built (not an importable one, nor its base)."""
    return issubclass(model, _DeclaredEvent) and model.__name__ == _class_name(getattr(model, "schema_name", ""))


def declaration(model: type[Event]) -> dict[str, Any]:
    """The arguments :func:`event_model` built ``model`` from, read back from the class: a model built at
    run time cannot be pickled by name, so :mod:`livectx.repo.snapshot` sends these and builds it again."""
    return {
        "source": model.schema_name,
        "columns": model.declared_columns,  # type: ignore[attr-defined]
        "timestamp_field": model.wire_timestamp_field,  # type: ignore[attr-defined]
        "key_field": model.key_field,
        "wire_format": model.wire_format,  # type: ignore[attr-defined]
        "checks": declared_checks(model),
        "allow_non_finite": bool(model.model_config.get("allow_inf_nan")),
        "avro_schema": model.avro_schema,  # type: ignore[attr-defined]
        "max_ahead_ms": model.max_ahead_ms,
        "max_behind_ms": model.max_behind_ms,
        "envelope": model.envelope,  # type: ignore[attr-defined]
    }


def declared_checks(model: type[Event]) -> dict[str, dict[str, Any]]:
    """The value checks a model was built with (``event_model``'s ``checks``), read back from its fields'
    constraints: ``{field: {check: bound}}``."""
    found: dict[str, dict[str, Any]] = {}
    for name, info in model.model_fields.items():
        for constraint in info.metadata:
            for check in CHECKS:
                bound = getattr(constraint, check, None)
                if bound is not None:
                    found.setdefault(name, {})[check] = bound
    return found


_AVRO_OF: dict[ColumnType, Any] = {
    "string": "string",
    "int": "long",
    "float": "double",
    "bool": "boolean",
    "timestamp": {"type": "long", "logicalType": "timestamp-micros"},
}


def avro_twin(model: type[Event]) -> type[Event]:
    """The same declared source read from schemaless Avro instead of JSON: the same columns, checks, key
    and event-time bounds, timestamps as ``timestamp-micros``. For comparing the two formats on one
    domain (``livectx bench features``' Avro run, the decoders' parity tests)."""
    columns: tuple[Column, ...] = model.declared_columns  # type: ignore[attr-defined]
    fields = []
    for column in columns:
        avro_type: Any = _AVRO_OF[column.type]
        field: dict[str, Any] = {"name": column.name, "type": ["null", avro_type] if column.nullable else avro_type}
        if column.has_default:
            field["default"] = column.default
        fields.append(field)
    schema = {"type": "record", "name": _class_name(model.schema_name), "fields": fields}
    twin = event_model(
        **declaration(model)
        | {
            "columns": parse_avro(json.dumps(schema), model.schema_name),
            "wire_format": "avro",
            "avro_schema": schema,
            "envelope": None,
        }
    )
    return twin
