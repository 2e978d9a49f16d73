"""Which topics the archiver keeps by default, and which event model each topic carries.

The event type of an archived topic is read from the archive first (the ``livectx-schema`` headers its
files saw, so a renamed or test topic works too), then from the feature repo's sources by topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from livectx.events import Event
from livectx.tier.manifest import ManifestEntry
from livectx.topics import DECISIONS


def archived_topics(repo: Any) -> tuple[str, ...]:
    """What ``livectx ingest run archive`` keeps when no ``--topic`` is given: every source topic of the
    repo and the decisions (the dead-letter and late-event topics are copies, the compacted model topic
    is its own archive)."""
    return (*(s.topic for s in repo.sources.values()), DECISIONS)


def event_type_of(topic: str, entries: Iterable[ManifestEntry] = (), repo: Any = None) -> type[Event] | None:
    """The event model of ``topic``: the single schema its archived records declare, else the repo's."""
    if repo is None:
        from livectx.repo import current_repo

        repo = current_repo()
    seen: set[str] = set()
    for entry in entries:
        seen.update(entry.value_schemas)
    names = {s.rsplit(".v", 1)[0] for s in seen}
    if len(names) == 1:
        found = repo.event_type(names.pop())
        if found is not None:
            return found
    return repo.model_for_topic(topic)
