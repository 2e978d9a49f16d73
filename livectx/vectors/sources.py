"""How one record of a memory view's topic becomes an upsert or a delete in the semantic memory.

Memory views are declared in the feature repo (:func:`livectx.repo.declare.memory_view`). A record becomes:
- an :class:`Upsert` (text to embed plus metadata), or
- a :class:`Delete`: an event the view marks as a delete, or a Kafka tombstone (key, null value);
- otherwise :func:`to_change` raises :class:`~livectx.errors.SchemaError` with the reason the record
  goes to the dead-letter topic: invalid UTF-8, not the schema, missing id, empty or oversized text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx import serde, wire
from livectx.errors import SchemaError
from livectx.events import Event

if TYPE_CHECKING:
    from livectx.wire import SchemaCache


@dataclass(frozen=True)
class TextSource:
    """One memory view: which topic's records become vectors, and how. Built from the repo's declaration
    (:func:`livectx.repo.declare.memory_view`) by :meth:`declared`; tests may build one directly."""

    topic: str
    event_type: type[Event]
    text: Callable[[Any], str]
    category: Callable[[Any], str | None]
    metadata: Callable[[Any], dict[str, Any]] = field(default=lambda _e: {})
    tenant: Callable[[Any], str] = field(default=lambda e: str(getattr(e, "tenant", "default")))
    is_delete: Callable[[Any], bool] = field(default=lambda e: getattr(e, "op", "upsert") == "delete")
    name: str = ""

    @property
    def schema(self) -> str:
        return self.event_type.schema_name

    @classmethod
    def declared(
        cls,
        *,
        name: str,
        topic: str,
        event_type: type[Event],
        text_fields: tuple[str, ...],
        id_field: str,
        tenant_field: str | None,
        category_field: str | None,
        metadata_fields: tuple[str, ...],
        delete_when: tuple[str, Any] | None,
    ) -> TextSource:
        if id_field != event_type.key_field:
            raise SchemaError(
                f"memory view {name}: id field {id_field} must be the source's key {event_type.key_field}"
            )

        def text(e: Any) -> str:
            return "\n".join(str(getattr(e, f)) for f in text_fields if getattr(e, f) is not None)

        def category(e: Any) -> str | None:
            value = getattr(e, category_field) if category_field else None
            return None if value is None else str(value)

        def metadata(e: Any) -> dict[str, Any]:
            return {f: getattr(e, f) for f in metadata_fields}

        def tenant(e: Any) -> str:
            value = getattr(e, tenant_field) if tenant_field else None
            return "default" if value is None else str(value)

        def is_delete(e: Any) -> bool:
            return delete_when is not None and getattr(e, delete_when[0]) == delete_when[1]

        return cls(topic, event_type, text, category, metadata, tenant, is_delete, name)


def vector_id(schema: str, key: str) -> str:
    """The vector's id: stable per source entity, so replays and retries overwrite, never add."""
    return f"{schema}:{key}"


@dataclass(frozen=True)
class Upsert:
    id: str
    text: str
    source: str
    tenant: str
    category: str | None
    event_ms: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    id: str


def to_change(
    source: TextSource, key: bytes | None, value: bytes | None, max_chars: int, schemas: SchemaCache | None = None
) -> Upsert | Delete:
    """Classify one record. Raises :class:`SchemaError` (the dead-letter reason) for bad input, and
    :class:`~livectx.errors.RegistryUnavailable` for a framed record the registry must be asked about and
    does not answer (not the record's fault: the caller retries it)."""
    if value is None:
        if not key:
            raise SchemaError("tombstone without a key: nothing to delete")
        return Delete(vector_id(source.schema, _utf8(key, "key")))
    if getattr(source.event_type, "wire_format", "json") == "json":
        _utf8(value[wire.HEADER_SIZE :] if value[:1] == b"\0" else value, "value")  # a framed one: its JSON
    event = serde.decode(source.event_type, value, schemas)
    entity_id = event.key.strip()
    if not entity_id:
        raise SchemaError(f"missing id: {source.event_type.key_field} is empty")
    if source.is_delete(event):
        return Delete(vector_id(source.schema, entity_id))
    text = source.text(event)
    if not text.strip():
        raise SchemaError("empty text: nothing to embed")
    if len(text) > max_chars:
        raise SchemaError(
            f"oversized text: {len(text)} characters, over the {max_chars} limit (LIVECTX_EMBEDDING_MAX_TEXT_CHARS)"
        )
    return Upsert(
        id=vector_id(source.schema, entity_id),
        text=text,
        source=source.schema,
        tenant=source.tenant(event),
        category=source.category(event),
        event_ms=event.event_time_ms,
        metadata=source.metadata(event),
    )


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"invalid UTF-8 in the record {what} at byte {exc.start}") from None
