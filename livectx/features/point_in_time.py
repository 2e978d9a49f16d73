"""Feature values as of each event: what the online store serves right after that event is processed.

Built on the batch recomputation the streaming engine is tested against (same declarations, same
semantics), so a model trained or judged on these values sees what the live agent would have seen, never
a value from the future. Cost is quadratic in events per entity: meant for scenario-sized histories; the
cold-tier replay is the path for large ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from livectx.events import Event
from livectx.features.recompute import recompute_online
from livectx.features.spec import FeatureGroup


def features_as_of(
    events: Iterable[Event], groups: Sequence[FeatureGroup], entity_key: str | None = None
) -> Iterator[tuple[Event, dict[str, Any]]]:
    """Yield ``(event, {feature: value})`` for every event, values of its entity right after it (the
    entity is ``entity_key``, by default the groups' own key)."""
    entity_key = entity_key or groups[0].entity_key
    history: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        entity = str(getattr(event, entity_key))
        history[entity].append(event)
        values: dict[str, Any] = {}
        for group in groups:
            row = recompute_online(group, [e for e in history[entity] if isinstance(e, group.event_type)]).get(entity)
            for feature in group.features:
                values[feature.name] = None if row is None else row.values[feature.name]
            values[group.event_time_field] = None if row is None else row.newest_event_ms
        yield event, values
