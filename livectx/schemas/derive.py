"""The schema each declared source registers: Avro for Avro sources, JSON Schema for JSON sources.

An Avro source's schema is the one it declares (``AvroFormat.schema_json``), registered as written. A
JSON source declares Spark-DDL columns; its JSON Schema is derived from them and from the strict event
model the workers validate with, so the registered contract says exactly what a worker accepts:

- column types (``TIMESTAMP`` is an RFC 3339 ``date-time`` string; an epoch-ms event time an integer);
- ``required`` holds every column without a ``DEFAULT``; ``DEFAULT NULL`` makes the type nullable;
  other defaults are the schema's ``default``;
- the declared value checks (``ge``, ``lt``, ``max_length`` ...) as ``minimum``, ``exclusiveMaximum``,
  ``maxLength`` ...;
- ``additionalProperties: false``, since the model forbids unknown fields. This closed content model is
  also what makes a removed field incompatible under the backward levels (old records still carry it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from livectx.repo.schema import Column, declared_checks
from livectx.repo.sources import SourceSpec

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
_JSON_TYPES = {"string": "string", "int": "integer", "float": "number", "bool": "boolean", "timestamp": "string"}
#: pydantic constraint -> JSON Schema keyword (the checks a source may declare per column).
_CHECK_KEYWORDS = {
    "ge": "minimum",
    "gt": "exclusiveMinimum",
    "le": "maximum",
    "lt": "exclusiveMaximum",
    "min_length": "minLength",
    "max_length": "maxLength",
}


@dataclass(frozen=True)
class DeclaredSchema:
    """What ``schemas apply`` registers for one source."""

    source: str
    subject: str
    schema_type: str  # "AVRO" | "JSON" (the registry's names)
    schema: dict[str, Any]
    compatibility: str
    #: How livectx's producers write the source's records (``plain`` or ``confluent``, the wire format).
    wire: str = "plain"

    @property
    def schema_str(self) -> str:
        return json.dumps(self.schema)


def declared_schemas(sources: dict[str, SourceSpec]) -> list[DeclaredSchema]:
    """One schema per declared source, in declaration order. Change-data-capture sources have none: their
    records are Debezium's envelopes written by Kafka Connect's converter, whose contract is the table's
    (the declared columns describe the row inside the envelope, not the record on the wire)."""
    return [declared_schema(spec) for spec in sources.values() if spec.cdc is None]


def declared_schema(spec: SourceSpec) -> DeclaredSchema:
    model: Any = spec.model
    if spec.wire_format == "avro":
        schema_type, schema = "AVRO", dict(model.avro_schema)
    else:
        schema_type, schema = "JSON", json_schema(spec)
    return DeclaredSchema(spec.name, spec.subject, schema_type, schema, spec.compatibility, spec.wire)


def json_schema(spec: SourceSpec) -> dict[str, Any]:
    """The JSON Schema of a JSON source's records, from its declared columns and model."""
    model: Any = spec.model
    columns: tuple[Column, ...] = model.declared_columns
    stamp = model.wire_timestamp_field
    properties = {c.name: _property(c, _checks(model, "event_time" if c.name == stamp else c.name)) for c in columns}
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DRAFT,
        "title": spec.name,
        "type": "object",
        "properties": properties,
        "required": [c.name for c in columns if c.required],
        "additionalProperties": False,
    }
    if spec.description:
        schema["description"] = spec.description
    return schema


def _property(column: Column, checks: dict[str, Any]) -> dict[str, Any]:
    json_type = _JSON_TYPES[column.type]
    prop: dict[str, Any] = {"type": [json_type, "null"] if column.nullable else json_type}
    if column.type == "timestamp":
        prop["format"] = "date-time"
    if column.has_default:
        prop["default"] = column.default
    prop.update(checks)
    return prop


def _checks(model: Any, field: str) -> dict[str, Any]:
    """The declared checks of one field as JSON Schema keywords."""
    return {_CHECK_KEYWORDS[check]: bound for check, bound in declared_checks(model).get(field, {}).items()}
