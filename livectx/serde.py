"""The one place events become bytes and bytes become events.

A source's payload format is what its repo declaration says (:mod:`livectx.repo.schema`): UTF-8 JSON
objects (``JsonFormat``) or Avro binary (``AvroFormat``), the key as the Kafka key. On the wire a record is
either *plain* (the payload alone: no livectx header is required, the topic says which source and so which
schema) or in the *Confluent wire format* (a magic byte and the writer schema's registry id before the
payload, :mod:`livectx.wire`). :func:`decode` tells them apart per record, so a topic can hold both while
it migrates: a JSON record starts with ``{``, a framed one with ``0x00``. A framed Avro record is resolved
from its writer schema to the declared one (a record of an older compatible writer gets the new field's
default); a framed JSON record is validated by the declared model, like a plain one.

Records livectx produces carry a ``livectx-schema`` header of ``<source>.v<version>`` as well, which lets
replays of renamed or test topics find their schema. :func:`encode` writes plain records; the registry's
format is written by :mod:`livectx.schemas.serializers`. Decoding raises :class:`SchemaError`, whose
message is the reason a dead-letter record carries, or :class:`~livectx.errors.RegistryUnavailable` (never
a record's fault: the caller pauses and retries).
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from livectx import wire
from livectx.errors import SchemaError
from livectx.events import Event

if TYPE_CHECKING:
    from livectx.wire import SchemaCache

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


def decode(event_type: type[Event], value: bytes | None, schemas: SchemaCache | None = None) -> Event:
    """Parse and validate one record value as ``event_type``, plain or in the Confluent wire format.

    Args:
        schemas: the writer schemas of framed records (default: the process-wide cache over the configured
            registry, :func:`livectx.wire.default_cache`; asked only for a framed record).

    Raises:
        SchemaError: not JSON (or not Avro of the schema), not an object, a missing or extra field, a wrong
            type or range, a non-finite number; for a framed record also an unknown schema id, or a schema
            of another type. The message names the field, e.g. ``amount: Input should be a valid number``.
        RegistryUnavailable: a framed record whose schema is not cached, and the registry does not answer.
    """
    avro = getattr(event_type, "wire_format", "json") == "avro"
    if value is None:
        wire_name = "an Avro" if avro else "a JSON"
        raise SchemaError(f"empty value (null record) where {wire_name} event was expected")
    if getattr(event_type, "envelope", None) == "debezium":  # a change event: validate its row
        from livectx.cdc.envelope import flatten

        value = json.dumps(flatten(value)).encode()
    if not avro:
        if value[:1] == b"\0":  # never the first byte of JSON
            return _decode_framed_json(event_type, value, schemas or wire.default_cache())
        try:
            return event_type.model_validate_json(value)  # one parse: ISO strings become datetimes
        except ValidationError as exc:
            raise _schema_error(event_type, exc) from None
    if wire.framed(value):
        try:
            return _decode_framed_avro(event_type, value, schemas or wire.default_cache())
        except SchemaError as framed_error:
            # Plain Avro may start with 0x00 too (an empty string, a 0, a null union branch first): a topic
            # migrating from plain Avro holds both, so a plain record that reads exactly is taken as one.
            try:
                return _validated(event_type, _read_avro(event_type, value))
            except SchemaError:
                raise framed_error from None
    return _validated(event_type, _read_avro(event_type, value))


def _writer(
    event_type: type[Event], value: bytes, schemas: SchemaCache, kind: str, label: str
) -> tuple[Any, int, bytes]:
    """The framed record's writer schema (checked to be of ``kind``), its id and the payload after the header."""
    writer_id, payload = wire.split(value)
    writer = schemas.get(writer_id)
    if writer.schema_type != kind:
        raise SchemaError(
            f"schema id {writer_id} is a {writer.schema_type} schema, but source {event_type.schema_name} is {label}"
        )
    return writer, writer_id, payload


def _decode_framed_json(event_type: type[Event], value: bytes, schemas: SchemaCache) -> Event:
    _schema, _schema_id, payload = _writer(event_type, value, schemas, "JSON", "JSON")
    # The declared model is the reader: it validates exactly what a plain record's reader validates.
    try:
        return event_type.model_validate_json(payload)
    except ValidationError as exc:
        raise _schema_error(event_type, exc) from None


def _decode_framed_avro(event_type: type[Event], value: bytes, schemas: SchemaCache) -> Event:
    writer, writer_id, payload = _writer(event_type, value, schemas, "AVRO", "Avro")
    return _validated(event_type, _read_avro(event_type, payload, writer.parsed, f"schema id {writer_id}"))


def _validated(event_type: type[Event], record: dict[str, Any]) -> Event:
    try:
        return event_type.model_validate(record)
    except ValidationError as exc:
        raise _schema_error(event_type, exc) from None


def _schema_error(event_type: type[Event], exc: ValidationError) -> SchemaError:
    """pydantic's errors as one :class:`SchemaError` naming the fields (the dead-letter reason)."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return SchemaError(f"not JSON: {first['msg']}")
    if first["type"] == "model_type":
        return SchemaError(f"expected a JSON object: {first['msg']}")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
    )
    return SchemaError(f"{schema_id(event_type)} schema violation: {problems}")


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


def _read_avro(event_type: type[Event], value: bytes, writer: Any = None, written_with: str = "") -> dict[str, Any]:
    """One Avro record of ``writer`` (default: the declared schema), resolved to the declared schema
    (Avro's schema resolution: promotions, defaults for fields the writer lacks, its extra fields skipped)."""
    buffer = io.BytesIO(value)
    reader = _parsed_avro(event_type)
    what = f"{schema_id(event_type)}" + (f" (written with {written_with})" if written_with else "")
    try:
        if writer is None:
            record = _fastavro().schemaless_reader(buffer, reader, None)
        else:
            record = _fastavro().schemaless_reader(buffer, writer, reader)
    except Exception as exc:  # fastavro raises EOFError, ValueError, SchemaResolutionError, ... on bad bytes
        raise SchemaError(f"not Avro of {what}: {type(exc).__name__}: {exc}") from None
    if buffer.tell() != len(value):
        raise SchemaError(f"not Avro of {what}: {len(value) - buffer.tell()} bytes after the record")
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
