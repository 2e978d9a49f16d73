"""The one place events become bytes and bytes become events.

A source's wire format is what its repo declaration says (:mod:`livectx.repo.schema`): UTF-8 JSON
objects (``JsonFormat``) or schemaless Avro binary (``AvroFormat``), the key as the Kafka key. Records
need no livectx header: the topic says which source, and so which schema, a record belongs to. Records
livectx produces carry a ``livectx-schema`` header of ``<source>.v<version>`` as well, which lets replays
of renamed or test topics find their schema. Decoding never raises anything but :class:`SchemaError`,
whose message is the reason a dead-letter record carries.
"""

from __future__ import annotations

import io
from typing import Any

from pydantic import ValidationError

from livectx.errors import SchemaError
from livectx.events import Event

SCHEMA_HEADER = "livectx-schema"


def schema_id(event_type: type[Event]) -> str:
    return f"{event_type.schema_name}.v{event_type.schema_version}"


def encode(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """``(key, value, headers)`` for producing ``event``."""
    if getattr(type(event), "wire_format", "json") == "avro":
        buffer = io.BytesIO()
        _fastavro().schemaless_writer(buffer, _parsed_avro(type(event)), event.model_dump(by_alias=True))
        value = buffer.getvalue()
    else:
        value = event.model_dump_json().encode()
    return event.key.encode(), value, [(SCHEMA_HEADER, schema_id(type(event)).encode())]


def decode(event_type: type[Event], value: bytes | None) -> Event:
    """Parse and validate one record value as ``event_type``.

    Raises:
        SchemaError: not JSON (or not Avro of the schema), not an object, a missing or extra field, a wrong
            type or range, a non-finite number. The message names the field, e.g. ``amount: Input should
            be a valid number``.
    """
    if value is None:
        wire = "an Avro" if getattr(event_type, "wire_format", "json") == "avro" else "a JSON"
        raise SchemaError(f"empty value (null record) where {wire} event was expected")
    try:
        if getattr(event_type, "wire_format", "json") == "avro":
            return event_type.model_validate(_read_avro(event_type, value))
        # One parse: JSON mode turns ISO strings into datetimes; strict types still reject "12.5".
        return event_type.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise SchemaError(f"not JSON: {first['msg']}") from None
        if first["type"] == "model_type":
            raise SchemaError(f"expected a JSON object: {first['msg']}") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise SchemaError(f"{schema_id(event_type)} schema violation: {problems}") from None


def check_event_time(event_type: type[Event], event_ms: int, record_ms: int | None) -> None:
    """Raise :class:`SchemaError` (the dead-letter reason) if ``event_ms`` is implausibly far from the
    record's Kafka timestamp ``record_ms``, by the source's declared bounds (``None`` or not positive: the
    record has no timestamp). A payment dated 2099 would otherwise freeze its user's windows."""
    if record_ms is None or record_ms <= 0:
        return
    ahead, behind = event_type.max_ahead_ms, event_type.max_behind_ms
    if ahead is not None and event_ms - record_ms > ahead:
        raise SchemaError(
            f"implausible event time: {_span(event_ms - record_ms)} ahead of the record's Kafka timestamp "
            f"(source {event_type.schema_name} allows {_span(ahead)})"
        )
    if behind is not None and record_ms - event_ms > behind:
        raise SchemaError(
            f"implausible event time: {_span(record_ms - event_ms)} behind the record's Kafka timestamp "
            f"(source {event_type.schema_name} allows {_span(behind)})"
        )


def _span(ms: int) -> str:
    if ms >= 86_400_000:
        return f"{ms / 86_400_000:.1f} days"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{ms / 1000:.1f} s"


def _read_avro(event_type: type[Event], value: bytes) -> dict[str, Any]:
    buffer = io.BytesIO(value)
    try:
        record = _fastavro().schemaless_reader(buffer, _parsed_avro(event_type), None)
    except Exception as exc:  # fastavro raises EOFError, ValueError, UnicodeDecodeError, ... on bad bytes
        raise SchemaError(f"not Avro of {schema_id(event_type)}: {type(exc).__name__}: {exc}") from None
    if buffer.tell() != len(value):
        raise SchemaError(f"not Avro of {schema_id(event_type)}: {len(value) - buffer.tell()} bytes after the record")
    return record  # type: ignore[return-value]


def _parsed_avro(event_type: type[Event]) -> Any:
    parsed = event_type.__dict__.get("_parsed_avro_schema")
    if parsed is None:
        parsed = _fastavro().parse_schema(event_type.avro_schema)  # type: ignore[attr-defined]
        type.__setattr__(event_type, "_parsed_avro_schema", parsed)
    return parsed


def _fastavro() -> Any:
    import fastavro

    return fastavro
