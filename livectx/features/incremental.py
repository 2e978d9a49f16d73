"""Incremental window state for one feature group: what the streaming engine keeps per entity.

The semantics are those of :mod:`livectx.features.recompute` (per-entity event-time closing with grace),
computed incrementally instead of over the whole history:

- Tumbling and hopping windows are kept as *buckets* of one hop (``step``; a tumbling window is one
  bucket). A window is the merge of its ``size / step`` buckets, so an event updates one bucket instead of
  every overlapping window. A bucket is dropped once every window containing it has closed (its last
  window's end plus grace is behind the entity's newest event), which is also when an event falling into it
  becomes a late event.
- Sliding windows keep the accepted events of the last ``size`` (they end at the newest event, so their
  boundaries move with every event). A sliding group made only of distinct counts keeps less: per feature,
  each value's latest sighting (a value counts while that sighting is inside the window), so its state,
  row and checkpoint cost follow the number of distinct values, not the event rate.

The online row (``row``) is always the window the entity's newest event falls in; it only ever contains
accepted events, so lateness matters for the late-events topic and the window history, not for the value
served. ``apply`` costs O(features) per event; ``row`` costs O(buckets) (O(events in window) for
sliding windows), paid once per entity per checkpoint, not per event.

Everything here is pure Python on plain values: the engine persists ``dump``/``load`` output next to the
consumer offsets, and backtests replay the same code.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from livectx.features.exact_sum import exact_add
from livectx.features.feature_plan import GroupPlan
from livectx.features.spec import Feature, FeatureGroup

#: Kept under its old name: callers and tests add to exact partials through this module.
_exact_add = exact_add


@dataclass(slots=True)
class WindowRow:
    """One window's values for one entity. (Slotted, not frozen: a checkpoint makes one per entity and view,
    and a frozen dataclass's ``__init__`` costs twice as much; nothing changes a row once made.)"""

    window_start_ms: int
    window_end_ms: int
    newest_event_ms: int  # newest event inside the window
    values: dict[str, Any]


class GroupState:
    """Window state of one feature group for the entities of one source partition."""

    def __init__(self, group: FeatureGroup) -> None:
        self.group = group
        w = group.window
        self.sliding = w.kind == "sliding"
        self.size = w.size_ms
        self.grace = w.grace_ms
        self.step = w.step_ms or w.size_ms
        #: Event fields the group reads, in the order observations carry them.
        self.columns: tuple[str, ...] = _columns(group.features)
        #: The features bound to their aggregation kinds (:mod:`livectx.features.aggregations`).
        self.plan = GroupPlan(group.features, self.columns)
        self.newest: dict[str, int] = {}
        #: tumbling/hopping: entity -> {bucket start: [newest ts, feature states...]}
        self.buckets: dict[str, dict[int, list[Any]]] = {}
        #: sliding: entity -> accepted events of the last ``size`` as columns ``[ts, seq, *columns]``, sorted
        #: by (ts, seq): a window is a bisect away, and columns serialise and aggregate at C speed.
        self.series: dict[str, list[list[Any]]] = {}
        #: sliding, distinct counts only: entity -> per feature {value: newest event time it was seen at}.
        self.sightings_only = self.sliding and all(
            f.aggregation == "distinct_count" and f.where is None for f in group.features
        )
        self.sightings: dict[str, list[dict[Any, int]]] = {}

    @property
    def idle_ms(self) -> int | None:
        """An entity idle this long behind the group's newest event is forgotten (:meth:`evict_idle`):
        the view's ttl (Feast's: its features are stale by then) plus a window and its grace, so no
        window that could still take an on-time event loses state. None: the ttl is "forever"."""
        ttl = self.group.ttl
        return None if ttl.days >= 365 * 50 else int(ttl.total_seconds() * 1000) + self.size + self.grace

    # -- per event ----------------------------------------------------------------------------------------

    def apply(self, entity: str, ts: int, seq: int, values: tuple[Any, ...]) -> bool:
        """Add one event; ``False`` if it is too late for every window it belongs to (not applied).

        The hot path of the engine (once per event and group): plain ints and pre-bound adders only."""
        newest = self.newest
        previous = newest.get(entity)
        if previous is None or ts > previous:
            newest[entity] = latest = ts
            advanced = True
        else:
            latest, advanced = previous, False
            # Late for every window: sliding, older than the oldest open one; else its last window closed.
            if self.sliding:
                if latest - self.grace - ts > self.size:
                    return False
            elif ts - ts % self.step + self.size <= latest - self.grace:
                return False
        if self.sightings_only:
            seen = self.sightings.get(entity)
            if seen is None:
                seen = self.sightings[entity] = [{} for _ in self.plan.sighted]
            for sightings, col in zip(seen, self.plan.sighted, strict=True):
                value = values[col]
                prior = sightings.get(value)
                if prior is None or prior < ts:
                    sightings[value] = ts
            return True
        if self.sliding:
            series = self.series.get(entity)
            if series is None:
                self.series[entity] = [[ts], [seq], *([v] for v in values)]
                return True
            times = series[0]
            if advanced or ts >= times[-1]:
                for column, value in zip(series, (ts, seq, *values), strict=True):
                    column.append(value)
                if times[0] < latest - self.size:
                    cut = bisect_left(times, latest - self.size)
                    for column in series:
                        del column[:cut]
            else:  # out of order: keep (ts, seq) order (seq grows with arrival, so after equal times)
                at = bisect_right(times, ts)
                for column, value in zip(series, (ts, seq, *values), strict=True):
                    column.insert(at, value)
            return True
        buckets = self.buckets.get(entity)
        if buckets is None:
            buckets = self.buckets[entity] = {}
        start = ts - ts % self.step
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = [ts, *[empty() for empty in self.plan.empties]]
            if advanced and len(buckets) > 1:
                closed = latest - self.grace - self.size  # a bucket at or before this has no open window left
                for old in [b for b in buckets if b <= closed]:
                    del buckets[old]
        elif ts > bucket[0]:
            bucket[0] = ts
        i = 1
        for add in self.plan.adders:
            bucket[i] = add(bucket[i], ts, seq, values)
            i += 1
        return True

    def open_windows_of(self, entity: str, ts: int) -> Iterator[tuple[int, int]]:
        """Windows containing ``ts`` that are still open for ``entity`` (start, end), oldest first."""
        if self.sliding:
            return
        latest = self.newest.get(entity, ts)
        first = ts - ts % self.step - self.size + self.step
        for start in range(first, ts + 1, self.step):
            if start + self.size > latest - self.grace:
                yield start, start + self.size

    # -- reading ------------------------------------------------------------------------------------------

    def current_window(self, entity: str) -> tuple[int, int]:
        newest = self.newest[entity]
        if self.sliding:
            return newest - self.size, newest
        end = newest - newest % self.step + self.step
        return end - self.size, end

    def row(self, entity: str) -> WindowRow:
        """The entity's online row: the window its newest event falls in."""
        start, end = self.current_window(entity)
        return self.window(entity, start, end)

    def window(self, entity: str, start: int, end: int) -> WindowRow:
        """Values of one window of ``entity``, computed from its buckets (or events) without merging state."""
        plans = self.plan.plans
        if self.sightings_only:
            if end != self.newest[entity]:
                raise ValueError(f"{self.group.name} keeps latest sightings: only its current window is known")
            seen = zip(self.plan.names, self.sightings[entity], strict=True)
            return WindowRow(start, end, end, {name: sum(t >= start for t in s.values()) for name, s in seen})
        if self.sliding:
            series = self.series[entity]
            lo, hi = bisect_left(series[0], start), bisect_right(series[0], end)
            window = series if (lo, hi) == (0, len(series[0])) else [column[lo:hi] for column in series]
            values = {name: p.over_columns(window) for name, p in zip(self.plan.names, plans, strict=True)}
            return WindowRow(start, end, window[0][-1], values)
        parts = [b for s, b in self.buckets.get(entity, {}).items() if start <= s < end]
        if len(parts) == 1:  # tumbling windows, or a hopping window's first hop
            only = parts[0]
            named = zip(self.plan.names, self.plan.results, only[1:], strict=True)
            values = {name: result(state) for name, result, state in named}
            return WindowRow(start, end, only[0], values)
        named = zip(self.plan.names, plans, strict=True)
        values = {name: p.over_states([b[i] for b in parts]) for i, (name, p) in enumerate(named, start=1)}
        return WindowRow(start, end, max(b[0] for b in parts), values)

    def entities(self) -> Iterable[str]:
        return self.newest.keys()

    def evict_idle(self) -> list[str]:
        """Forget the entities whose newest event is more than ``idle_ms`` behind the newest event of the
        group here (its event-time clock), and return them: state follows the active entities.

        An entity forgotten and seen again starts afresh, which is what keeping it would give for any
        event newer than ``idle_ms`` minus the ttl: every window with its old events is closed by then."""
        newest = self.newest
        if self.idle_ms is None or not newest:
            return []
        cut = max(newest.values()) - self.idle_ms
        gone = [entity for entity, ts in newest.items() if ts < cut]
        for entity in gone:
            del newest[entity]
            self.buckets.pop(entity, None)
            self.series.pop(entity, None)
            self.sightings.pop(entity, None)
        return gone

    # -- merging batch aggregates (livectx.features.batch_apply) -------------------------------------------
    # Each reaches the state ``apply`` would for the same events when every entity's events are in
    # event-time order and not older than its newest event so far (the batch path checks that first).

    def merge_series(self, entities: list[str], columns: list[list[list[Any]]]) -> None:
        """Append each entity's events (columns ``[ts, seq, *columns]``, per entity, in order) to its series."""
        size, newest, all_series = self.size, self.newest, self.series
        for i, entity in enumerate(entities):
            new = [column[i] for column in columns]
            latest = new[0][-1]  # in order: the batch's last event is the entity's newest
            previous = newest.get(entity)
            if previous is not None and previous > latest:
                latest = previous
            newest[entity] = latest
            series = all_series.get(entity)
            if series is None:
                all_series[entity] = series = new
            else:
                for column, values in zip(series, new, strict=True):
                    column.extend(values)
            times = series[0]
            if times[0] < latest - size:
                cut = bisect_left(times, latest - size)
                for column in series:
                    del column[:cut]

    def merge_sightings(self, feature: int, entities: list[str], values: list[Any], tops: list[int]) -> None:
        """Merge (entity, value, newest time seen) of one feature by max. Every event has a value for
        feature 0, so its rows also carry each entity's newest event time."""
        newest, all_seen, n = self.newest, self.sightings, len(self.plan.plans)
        for entity, value, top in zip(entities, values, tops, strict=True):
            seen = all_seen.get(entity)
            if seen is None:
                seen = all_seen[entity] = [{} for _ in range(n)]
            sightings = seen[feature]
            prior = sightings.get(value)
            if prior is None or prior < top:
                sightings[value] = top
            if feature == 0:
                previous = newest.get(entity)
                if previous is None or top > previous:
                    newest[entity] = top

    def merge_buckets(
        self,
        entities: list[str],
        starts: list[int],
        max_ts: list[int],
        min_ts: list[int],
        fill: Callable[[list[list[Any]]], None],
    ) -> None:
        """Merge per (entity, bucket start) aggregates: the buckets are found or created as ``apply``
        would, ``fill`` merges the feature aggregates into them (one list of buckets, in row order), then
        closed buckets are dropped."""
        newest, all_buckets, empties = self.newest, self.buckets, self.plan.empties
        created: dict[str, tuple[int, int]] = {}  # entity -> (newest bucket created, its first event time)
        targets: list[list[Any]] = []
        for entity, start, top, first in zip(entities, starts, max_ts, min_ts, strict=True):
            buckets = all_buckets.get(entity)
            if buckets is None:
                buckets = all_buckets[entity] = {}
            bucket = buckets.get(start)
            if bucket is None:
                bucket = buckets[start] = [top, *[empty() for empty in empties]]
                newest_created = created.get(entity)
                if newest_created is None or start > newest_created[0]:
                    created[entity] = (start, first)
            elif top > bucket[0]:
                bucket[0] = top
            targets.append(bucket)
            previous = newest.get(entity)
            if previous is None or top > previous:
                newest[entity] = top
        fill(targets)
        # apply drops closed buckets whenever an event opens a new one; the newest such event decides
        # (the cut only grows), so replay it once per entity.
        horizon = self.grace + self.size
        for entity, (_, first) in created.items():
            buckets = all_buckets[entity]
            if len(buckets) > 1:
                for old in [b for b in buckets if b <= first - horizon]:
                    del buckets[old]

    # -- persistence --------------------------------------------------------------------------------------

    def dump(self, entity: str) -> bytes:
        """The entity's state as JSON bytes (sets as sorted lists)."""
        body: list[Any] = [self.newest[entity]]
        if self.sightings_only:
            body.append([[list(s), list(s.values())] for s in self._prune(entity)])
        elif self.sliding:
            body.append(self.series[entity])
        elif not self.plan.plain_states:
            plans = self.plan.plans
            body.append(
                [
                    [start, b[0], *(p.dump(s) for p, s in zip(plans, b[1:], strict=True))]
                    for start, b in self.buckets.get(entity, {}).items()
                ]
            )
        else:  # bucket states are JSON as they are
            body.append([[start, *b] for start, b in self.buckets.get(entity, {}).items()])
        return orjson.dumps(body)

    def _prune(self, entity: str) -> list[dict[Any, int]]:
        """Forget sightings older than the current window: windows only move forward, so they never count
        again (done when dumping, once per checkpoint, rather than per event)."""
        cut = self.newest[entity] - self.size
        seen = self.sightings[entity]
        for sightings in seen:
            if sightings and min(sightings.values()) < cut:  # (most dumps: nothing to forget)
                for value in [v for v, t in sightings.items() if t < cut]:
                    del sightings[value]
        return seen

    def load(self, entity: str, raw: bytes) -> None:
        newest, body = orjson.loads(raw)
        self.newest[entity] = newest
        if self.sightings_only:
            sighted = self.plan.sighted
            if len(body) == 2 + len(self.columns) and len(body) != len(sighted):
                # Saved as an event series (before sightings existed): each value's newest time in it.
                body = [[body[2 + col], body[0]] for col in sighted]
            self.sightings[entity] = [{} for _ in sighted]
            for sightings, (values, times) in zip(self.sightings[entity], body, strict=True):
                for value, ts in zip(values, times, strict=True):
                    if sightings.get(value, ts) <= ts:
                        sightings[value] = ts
        elif self.sliding:
            self.series[entity] = body
        else:
            self.buckets[entity] = {
                start: [bts, *(p.load(s) for p, s in zip(self.plan.plans, states, strict=True))]
                for start, bts, *states in body
            }


def _columns(features: tuple[Feature, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for f in features:
        for col in (f.column, f.where[0] if f.where else None):
            if col is not None and col not in names:
                names.append(col)
    return tuple(names)
