"""Which topics feed the semantic memory, and how one record becomes an upsert or a delete.

Declared once, used by the embedding worker, the benchmarks and the tests. A record becomes:
- an :class:`Upsert` (text to embed plus metadata), or
- a :class:`Delete`: an event with ``op="delete"``, or a Kafka tombstone (key, null value);
- otherwise :func:`to_change` raises :class:`~livectx.errors.SchemaError` with the reason the record
  goes to the dead-letter topic: invalid UTF-8, not the schema, missing id, empty or oversized text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livectx import serde, topics
from livectx.errors import SchemaError
from livectx.events import Document, Event, Review, SupportTicket


@dataclass(frozen=True)
class TextSource:
    topic: str
    event_type: type[Event]
    text: Callable[[Any], str]
    category: Callable[[Any], str | None]
    metadata: Callable[[Any], dict[str, Any]] = field(default=lambda _e: {})

    @property
    def schema(self) -> str:
        return self.event_type.schema_name


TEXT_SOURCES: dict[str, TextSource] = {
    source.topic: source
    for source in (
        TextSource(
            topics.TICKETS,
            SupportTicket,
            text=lambda e: f"{e.subject}\n{e.text}",
            category=lambda e: e.department,
            metadata=lambda e: {"user_id": e.user_id},
        ),
        TextSource(
            topics.REVIEWS,
            Review,
            text=lambda e: e.text,
            category=lambda e: e.item_id,
            metadata=lambda e: {"user_id": e.user_id, "item_id": e.item_id, "rating": e.rating},
        ),
        TextSource(
            topics.DOCUMENTS,
            Document,
            text=lambda e: f"{e.title}\n{e.text}",
            category=lambda e: e.category,
        ),
    )
}


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


def to_change(source: TextSource, key: bytes | None, value: bytes | None, max_chars: int) -> Upsert | Delete:
    """Classify one record. Raises :class:`SchemaError` (the dead-letter reason) for bad input."""
    if value is None:
        if not key:
            raise SchemaError("tombstone without a key: nothing to delete")
        return Delete(vector_id(source.schema, _utf8(key, "key")))
    _utf8(value, "value")
    event = serde.decode(source.event_type, value)
    entity_id = event.key.strip()
    if not entity_id:
        raise SchemaError(f"missing id: {source.event_type.key_field} is empty")
    if getattr(event, "op", "upsert") == "delete":
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
        tenant=str(getattr(event, "tenant", "default")),
        category=source.category(event),
        event_ms=event.event_time_ms,
        metadata=source.metadata(event),
    )


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"invalid UTF-8 in the record {what} at byte {exc.start}") from None
