"""The one place events become bytes and bytes become events.

Wire format today: UTF-8 JSON values, the entity id as the key, and a ``livectx-schema`` header of
``<name>.v<version>``. A schema registry changes this module and nothing else. Decoding never raises
anything but :class:`SchemaError`, whose message is the reason a dead-letter record carries.
"""

from __future__ import annotations

from pydantic import ValidationError

from livectx.errors import SchemaError
from livectx.events import EVENT_TYPES, Event

SCHEMA_HEADER = "livectx-schema"


def schema_id(event_type: type[Event]) -> str:
    return f"{event_type.schema_name}.v{event_type.schema_version}"


def encode(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """``(key, value, headers)`` for producing ``event``."""
    value = event.model_dump_json().encode()
    return event.key.encode(), value, [(SCHEMA_HEADER, schema_id(type(event)).encode())]


def decode(event_type: type[Event], value: bytes | None) -> Event:
    """Parse and validate one record value as ``event_type``.

    Raises:
        SchemaError: not JSON, not an object, a missing or extra field, a wrong type or range. The message
            names the field, e.g. ``amount: Input should be a valid number``.
    """
    if value is None:
        raise SchemaError("empty value (null record) where a JSON event was expected")
    try:
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


def event_type_named(name: str) -> type[Event]:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise SchemaError(f"unknown event type {name!r}; known: {', '.join(sorted(EVENT_TYPES))}") from None
