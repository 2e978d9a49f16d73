"""Which topics the archiver keeps by default, and which event model each topic carries.

The event type of an archived topic is read from the catalog first (the ``livectx-schema`` headers its
files saw, so a renamed or test topic works too) and falls back to :data:`TOPIC_EVENTS`.
"""

from __future__ import annotations

from collections.abc import Iterable

from livectx import topics
from livectx.events import EVENT_TYPES, Click, Decision, Document, Event, Login, Review, SupportTicket, Transaction
from livectx.tier.manifest import ManifestEntry

TOPIC_EVENTS: dict[str, type[Event]] = {
    topics.TRANSACTIONS: Transaction,
    topics.LOGINS: Login,
    topics.CLICKS: Click,
    topics.TICKETS: SupportTicket,
    topics.REVIEWS: Review,
    topics.DOCUMENTS: Document,
    topics.DECISIONS: Decision,
}

#: What ``livectx ingest run archive`` keeps when no ``--topic`` is given: every event topic (the
#: dead-letter and late-event topics are copies, the compacted model topic is its own archive).
ARCHIVED_TOPICS: tuple[str, ...] = tuple(TOPIC_EVENTS)


def event_type_of(topic: str, entries: Iterable[ManifestEntry] = ()) -> type[Event] | None:
    """The event model of ``topic``: the single schema its archived records declare, else the catalog."""
    seen: set[str] = set()
    for entry in entries:
        seen.update(entry.value_schemas)
    names = {s.rsplit(".v", 1)[0] for s in seen}
    if len(names) == 1:
        found = EVENT_TYPES.get(names.pop())
        if found is not None:
            return found
    return TOPIC_EVENTS.get(topic)
