"""Why a schema change is incompatible, one readable line per field.

The registry decides (its compatibility test is the verdict ``check`` and ``apply`` act on), but the
Confluent API returns at most terse messages (Apicurio's test endpoint returns none, its 409 says
``reader type: STRING not compatible with writer type: LONG at /fields/1/type``). What a producing team
needs is the field and the reason, so the two schemas are compared here field by field, in the
directions the level implies:

- backward (the new schema reads records written with the old one): a changed type, a field added
  without a default, a nullable field made required; for a closed JSON Schema, a removed field;
- forward (old readers read records written with the new one): the same, with the schemas swapped,
  which makes a removed field without a default a problem.

Records are flat (the declared columns), so fields are compared by name at the top level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Avro's legal promotions (writer type -> reader types): the Avro specification's schema resolution.
_AVRO_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
#: JSON Schema: an integer is a number, so a reader typed ``number`` accepts it.
_JSON_PROMOTIONS = {"integer": {"number"}}


@dataclass(frozen=True)
class _Field:
    type: str  # the base type, rendered for a message ("long", "string (date-time)")
    nullable: bool
    has_default: bool
    required: bool  # must be present in a record (JSON Schema's "required", Avro: no default)


def directions(level: str) -> tuple[bool, bool]:
    """(backward, forward) for a compatibility level."""
    base = level.removesuffix("_TRANSITIVE")
    return base in ("BACKWARD", "FULL"), base in ("FORWARD", "FULL")


def reasons(schema_type: str, old: dict[str, Any], new: dict[str, Any], level: str) -> list[str]:
    """Readable reasons why ``new`` cannot follow ``old`` under ``level`` (empty: none found)."""
    backward, forward = directions(level)
    read = _avro_fields if schema_type == "AVRO" else _json_fields
    closed_old = schema_type == "JSON" and old.get("additionalProperties") is False
    closed_new = schema_type == "JSON" and new.get("additionalProperties") is False
    old_fields, new_fields = read(old), read(new)
    found: list[str] = []
    if backward:
        found += _one_way(
            schema_type, writer=old_fields, reader=new_fields, closed_reader=closed_new, old_is_writer=True
        )
    if forward:
        found += _one_way(
            schema_type, writer=new_fields, reader=old_fields, closed_reader=closed_old, old_is_writer=False
        )
    return list(dict.fromkeys(found))


def _one_way(
    schema_type: str, *, writer: dict[str, _Field], reader: dict[str, _Field], closed_reader: bool, old_is_writer: bool
) -> list[str]:
    """Problems of ``reader`` reading records written with ``writer``, phrased as old -> new."""
    promotions = _AVRO_PROMOTIONS if schema_type == "AVRO" else _JSON_PROMOTIONS
    found = []
    for name, r in reader.items():
        w = writer.get(name)
        if w is None:
            if r.required:
                found.append(
                    f"field '{name}' was added without a default (records already written lack it)"
                    if old_is_writer
                    else f"field '{name}' was removed, but readers of the old schema require it (it has no default)"
                )
            continue
        if w.type != r.type and r.type not in promotions.get(w.type, ()):
            old_type, new_type = (w.type, r.type) if old_is_writer else (r.type, w.type)
            found.append(f"field '{name}' changed type from {old_type} to {new_type}")
        if w.nullable and not r.nullable:
            found.append(
                f"field '{name}' is no longer nullable (records already written may hold null)"
                if old_is_writer
                else f"field '{name}' became nullable, which readers of the old schema reject"
            )
    if closed_reader:
        for name in writer.keys() - reader.keys():
            found.append(
                f"field '{name}' was removed (records already written still carry it, and the schema allows "
                "no other fields)"
                if old_is_writer
                else f"field '{name}' was added, which readers of the old schema reject (no other fields allowed)"
            )
    return found


def _avro_fields(schema: dict[str, Any]) -> dict[str, _Field]:
    fields = {}
    for field in schema.get("fields", []):
        declared = field.get("type")
        branches = declared if isinstance(declared, list) else [declared]
        rest = [b for b in branches if b != "null"]
        base = _avro_type(rest[0]) if len(rest) == 1 else " | ".join(_avro_type(b) for b in rest)
        has_default = "default" in field
        fields[field["name"]] = _Field(base, "null" in branches, has_default, not has_default)
    return fields


def _avro_type(avro_type: Any) -> str:
    if isinstance(avro_type, dict):
        inner = avro_type.get("type")
        logical = avro_type.get("logicalType")
        if inner in ("record", "enum", "fixed"):
            return f"{inner} {avro_type.get('name', '')}".strip()
        return f"{inner} ({logical})" if logical else str(inner)
    return str(avro_type)


def _json_fields(schema: dict[str, Any]) -> dict[str, _Field]:
    required = set(schema.get("required", []))
    fields = {}
    for name, prop in (schema.get("properties") or {}).items():
        declared = prop.get("type", "any")
        types = declared if isinstance(declared, list) else [declared]
        rest = [t for t in types if t != "null"]
        base = " | ".join(rest) or "null"
        if prop.get("format"):
            base += f" ({prop['format']})"
        fields[name] = _Field(base, "null" in types, "default" in prop, name in required)
    return fields
