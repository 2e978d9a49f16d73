"""Batch recomputation of the streaming features: the reference the online values must equal exactly.

Replays a log of events (in the order the engine consumed them, per entity) through the same
declarations and the same window semantics as the engine (per-key event-time closing, as Quix Streams
does it): an event updates every window of it that has not yet expired, where a window has expired once
the entity's newest event time passed its end plus grace. The online row of an entity is the window that
ends soonest after its newest event (tumbling: its window; hopping: the closing-soonest hop; sliding: the
window ending at that event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from livectx.events import Event
from livectx.features.aggregations import kind_of
from livectx.features.spec import Feature, FeatureGroup


@dataclass(frozen=True)
class OnlineRow:
    entity_id: str
    window_start_ms: int
    window_end_ms: int
    newest_event_ms: int
    values: dict[str, Any]


def online_window(group: FeatureGroup, newest_ms: int) -> tuple[int, int]:
    """The window an entity's online row shows, given its newest event time."""
    w = group.window
    if w.kind == "sliding":
        return newest_ms - w.size_ms, newest_ms
    step = w.step_ms or w.size_ms
    end = newest_ms - newest_ms % step + step
    return end - w.size_ms, end


def recompute_online(group: FeatureGroup, events: Iterable[Event]) -> dict[str, OnlineRow]:
    """Final online row per entity. ``events`` must be in consumption order per entity (offset order)."""
    newest: dict[str, int] = {}
    seen: dict[str, list[tuple[Event, int]]] = defaultdict(list)  # (event, entity's newest time on arrival)
    for event in events:
        entity = str(getattr(event, group.entity_key))
        ts = event.event_time_ms
        latest = max(ts, newest.get(entity, ts))
        newest[entity] = latest
        seen[entity].append((event, latest))
    rows = {}
    for entity, newest_ms in newest.items():
        start, end = online_window(group, newest_ms)
        members = [
            e
            for e, latest in seen[entity]
            if _in_window(group, e.event_time_ms, start, end) and _window_open(group, e.event_time_ms, end, latest)
        ]
        rows[entity] = OnlineRow(
            entity,
            start,
            end,
            max(e.event_time_ms for e in members),
            {f.name: aggregate(f, members) for f in group.features},
        )
    return rows


def late_events(group: FeatureGroup, events: Iterable[Event]) -> list[Event]:
    """Events too late for every window they belong to (what the engine sends to the late-events topic)."""
    newest: dict[str, int] = {}
    out = []
    for event in events:
        entity = str(getattr(event, group.entity_key))
        ts = event.event_time_ms
        latest = max(ts, newest.get(entity, ts))
        newest[entity] = latest
        if fully_late(group, ts, latest - group.window.grace_ms - ts):
            out.append(event)
    return out


def fully_late(group: FeatureGroup, ts: int, late_by_ms: int) -> bool:
    """Whether an event ``late_by_ms`` behind its entity's closing point misses *all* its windows.

    ``late_by_ms`` is ``newest - grace - ts``, as Quix Streams reports it. An event that misses only some
    of its hopping windows still updates the others and is not a late event."""
    w = group.window
    if w.kind == "sliding":
        return late_by_ms > w.size_ms
    step = w.step_ms or w.size_ms
    last_window_end = ts - ts % step + w.size_ms
    return last_window_end <= ts + late_by_ms


def _window_open(group: FeatureGroup, ts: int, end: int, latest: int) -> bool:
    """Whether an event at ``ts`` arriving when the entity's newest time is ``latest`` may update a window
    ending at ``end`` (Quix Streams' per-key closing: end + grace must not have passed)."""
    grace, size = group.window.grace_ms, group.window.size_ms
    if group.window.kind == "sliding":  # inclusive windows: dropped only if older than every open window
        return ts > latest - grace - 1 - size
    return end > latest - grace


def _in_window(group: FeatureGroup, ts: int, start: int, end: int) -> bool:
    if group.window.kind == "sliding":
        return start <= ts <= end
    return start <= ts < end


def aggregate(feature: Feature, events: list[Event]) -> Any:
    """One feature over the events of one window, with the engine's null semantics (its kind's)."""
    kind = kind_of(feature.aggregation)
    if feature.where is not None:
        field, wanted = feature.where
        events = [e for e in events if getattr(e, field) == wanted]
    times = [e.event_time_ms for e in events]
    values = times if feature.column is None else [getattr(e, feature.column) for e in events]
    return kind.over_events(values, times)
