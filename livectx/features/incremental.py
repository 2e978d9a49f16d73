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

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from livectx.features.spec import Feature, FeatureGroup


@dataclass(frozen=True)
class WindowRow:
    """One window's values for one entity."""

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
        self._plan = [_FeaturePlan(f, self.columns) for f in group.features]
        self._adders = [plan.adder() for plan in self._plan]
        self._empties = [plan.empty for plan in self._plan]
        self._has_sets = any(f.aggregation == "distinct_count" for f in group.features)
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
        self._sighted = [plan.col for plan in self._plan]
        #: An entity idle this long behind the group's newest event is forgotten (:meth:`evict_idle`):
        #: the view's ttl (Feast's: its features are stale by then) plus a window and its grace, so no
        #: window that could still take an on-time event loses state. None: the ttl is "forever".
        ttl_ms = int(group.ttl.total_seconds() * 1000)
        self.idle_ms: int | None = None if group.ttl.days >= 365 * 50 else ttl_ms + self.size + self.grace

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
                seen = self.sightings[entity] = [{} for _ in self._sighted]
            for sightings, col in zip(seen, self._sighted, strict=True):
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
            bucket = buckets[start] = [ts, *[empty() for empty in self._empties]]
            if advanced and len(buckets) > 1:
                closed = latest - self.grace - self.size  # a bucket at or before this has no open window left
                for old in [b for b in buckets if b <= closed]:
                    del buckets[old]
        elif ts > bucket[0]:
            bucket[0] = ts
        i = 1
        for add in self._adders:
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
        plans = self._plan
        if self.sightings_only:
            if end != self.newest[entity]:
                raise ValueError(f"{self.group.name} keeps latest sightings: only its current window is known")
            seen = zip(plans, self.sightings[entity], strict=True)
            return WindowRow(start, end, end, {p.feature.name: sum(t >= start for t in s.values()) for p, s in seen})
        if self.sliding:
            series = self.series[entity]
            lo, hi = bisect_left(series[0], start), bisect_right(series[0], end)
            window = series if (lo, hi) == (0, len(series[0])) else [column[lo:hi] for column in series]
            values = {p.feature.name: p.over_columns(window) for p in plans}
            return WindowRow(start, end, window[0][-1], values)
        parts = [b for s, b in self.buckets.get(entity, {}).items() if start <= s < end]
        if len(parts) == 1:  # tumbling windows, or a hopping window's first hop
            only = parts[0]
            values = {p.feature.name: p.result(only[i]) for i, p in enumerate(plans, start=1)}
            return WindowRow(start, end, only[0], values)
        values = {p.feature.name: p.over_states([b[i] for b in parts]) for i, p in enumerate(plans, start=1)}
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

    # -- persistence --------------------------------------------------------------------------------------

    def dump(self, entity: str) -> bytes:
        """The entity's state as JSON bytes (sets as sorted lists)."""
        body: list[Any] = [self.newest[entity]]
        if self.sightings_only:
            body.append([[list(s), list(s.values())] for s in self._prune(entity)])
        elif self.sliding:
            body.append(self.series[entity])
        elif self._has_sets:
            plans = self._plan
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
            for value in [v for v, t in sightings.items() if t < cut]:
                del sightings[value]
        return seen

    def load(self, entity: str, raw: bytes) -> None:
        newest, body = orjson.loads(raw)
        self.newest[entity] = newest
        if self.sightings_only:
            if len(body) == 2 + len(self.columns) and len(body) != len(self._sighted):
                # Saved as an event series (before sightings existed): each value's newest time in it.
                body = [[body[2 + col], body[0]] for col in self._sighted]
            self.sightings[entity] = [{} for _ in self._sighted]
            for sightings, (values, times) in zip(self.sightings[entity], body, strict=True):
                for value, ts in zip(values, times, strict=True):
                    if sightings.get(value, ts) <= ts:
                        sightings[value] = ts
        elif self.sliding:
            self.series[entity] = body
        else:
            self.buckets[entity] = {
                start: [bts, *(p.load(s) for p, s in zip(self._plan, states, strict=True))]
                for start, bts, *states in body
            }


def _columns(features: tuple[Feature, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for f in features:
        for col in (f.column, f.where[0] if f.where else None):
            if col is not None and col not in names:
                names.append(col)
    return tuple(names)


def _exact_add(partials: list[float], x: float) -> None:
    """Add ``x`` to Shewchuk's non-overlapping partial sums (what ``math.fsum`` keeps), in place.

    Sums and means are then exactly rounded whatever the order or grouping of additions, so bucket merges
    and the batch recomputation (which uses ``math.fsum``) agree to the last bit."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


class _FeaturePlan:
    """One feature's partial aggregate: ``empty``, ``add`` an event, ``result``; and the result straight
    over several buckets' states or over raw observations.

    States are plain values (int, float, list, set) so they serialise as JSON; sums keep exact partials."""

    def __init__(self, feature: Feature, columns: tuple[str, ...]) -> None:
        self.feature = feature
        self.kind = feature.aggregation
        self.col = columns.index(feature.column) if feature.column is not None else None
        self.where = (columns.index(feature.where[0]), feature.where[1]) if feature.where else None

    def empty(self) -> Any:
        match self.kind:
            case "count" | "distinct_count":
                return 0 if self.kind == "count" else set()
            case "mean":
                return [[], 0]  # (exact partial sums, count)
            case "sum":
                return []  # exact partial sums (empty: no values)
            case _:
                return None

    def adder(self) -> Callable[[Any, int, int, tuple[Any, ...]], Any]:
        """``add`` specialised for this feature (no dispatch per event): the engine's inner loop."""
        col = self.col
        if self.kind == "count":
            if self.where is None:
                return lambda s, ts, seq, v: s + 1
            where_col, wanted = self.where
            return lambda s, ts, seq, v: s + 1 if v[where_col] == wanted else s
        if self.where is not None:
            return self.add
        match self.kind:
            case "max":
                return lambda s, ts, seq, v: v[col] if s is None or v[col] > s else s
            case "min":
                return lambda s, ts, seq, v: v[col] if s is None or v[col] < s else s
            case "sum":
                return lambda s, ts, seq, v: _exact_add(s, v[col]) or s
            case "distinct_count":
                return lambda s, ts, seq, v: s.add(v[col]) or s
            case "last":
                return lambda s, ts, seq, v: [ts, seq, v[col]] if s is None or (ts, seq) > (s[0], s[1]) else s
        return self.add

    def add(self, state: Any, ts: int, seq: int, values: tuple[Any, ...]) -> Any:
        if self.where is not None and values[self.where[0]] != self.where[1]:
            return state
        if self.kind == "count":
            return state + 1
        value = values[self.col]  # type: ignore[index]
        match self.kind:
            case "sum":
                _exact_add(state, value)
                return state
            case "max":
                return value if state is None or value > state else state
            case "min":
                return value if state is None or value < state else state
            case "mean":
                _exact_add(state[0], value)
                state[1] += 1
                return state
            case "distinct_count":
                state.add(value)
                return state
            case "last":
                return [ts, seq, value] if state is None or (ts, seq) > (state[0], state[1]) else state
        raise ValueError(self.kind)

    def result(self, state: Any) -> Any:
        match self.kind:
            case "distinct_count":
                return len(state)
            case "mean":
                return math.fsum(state[0]) / state[1] if state[1] else None
            case "sum":
                return math.fsum(state) if state else None
            case "last":
                return None if state is None else state[2]
        return state

    def over_states(self, states: list[Any]) -> Any:
        """The result over several buckets' states (a hopping window), without building a merged state."""
        match self.kind:
            case "count":
                return sum(states)
            case "distinct_count":
                return len(set().union(*states))
            case "sum":
                return math.fsum([x for s in states for x in s]) if any(states) else None
            case "mean":
                count = sum(s[1] for s in states)
                return math.fsum([x for s in states for x in s[0]]) / count if count else None
            case "max":
                present = [s for s in states if s is not None]
                return max(present) if present else None
            case "min":
                present = [s for s in states if s is not None]
                return min(present) if present else None
            case "last":
                present = [s for s in states if s is not None]
                return max(present, key=lambda s: (s[0], s[1]))[2] if present else None
        raise ValueError(self.kind)

    def over_columns(self, series: list[list[Any]]) -> Any:
        """The result over a sliding window's columns ``[ts, seq, *columns]`` (sorted by ts, seq)."""
        if self.where is not None:
            col, wanted = self.where
            keep = [i for i, v in enumerate(series[2 + col]) if v == wanted]
            series = [[column[i] for i in keep] for column in series]
        if self.kind == "count":
            return len(series[0])
        column = series[2 + self.col]  # type: ignore[operator]
        if self.kind == "distinct_count":
            return len(set(column))
        if not column:
            return None
        match self.kind:
            case "sum":
                return math.fsum(column)
            case "mean":
                return math.fsum(column) / len(column)
            case "max":
                return max(column)
            case "min":
                return min(column)
            case "last":
                return column[-1]  # sorted by (ts, seq): the newest, ties to the later arrival
        raise ValueError(self.kind)

    def dump(self, state: Any) -> Any:
        if self.kind != "distinct_count":
            return state
        try:
            return sorted(state)  # one type (the usual case): natural order, and fast
        except TypeError:
            return sorted(state, key=repr)

    def load(self, state: Any) -> Any:
        return set(state) if self.kind == "distinct_count" else state
