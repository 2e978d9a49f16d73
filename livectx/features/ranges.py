"""Range queries over a batch laid out behind its state: how a whole batch's per-event rows are computed.

The offline copy needs, for every event, the entity's online row right after it. When an entity's events
in a batch are in event-time order (the batch path's condition, :mod:`.batch_apply`), the window after its
event *i* holds a contiguous run of what that entity has seen: the state's buckets (or events, or
sightings) from the window's start on, then its batch events up to *i*. Laid out as one array -- per
entity, the state's part by time, then the batch rows in offset order -- every batch row's window is a
range ``[lo, hi]`` of it, with ``lo`` non-decreasing. Each aggregation kind is then a range query
(:meth:`~.aggregations.AggregationKind.running`) answered by a few numpy passes over the batch, never a
Python step per event:

- totals (counts): prefix sums;
- exact sums: every float is an integer times a power of two, so prefix sums of those integers are exact
  and one correctly rounded conversion gives what ``math.fsum`` gives, to the last bit;
- min and max: a sparse table, O(n log n);
- distinct counts: an occurrence counts at row *i* while no later occurrence of its value is at or
  before *i* and it is still inside *i*'s window; with ``lo`` non-decreasing that is one interval of rows
  per occurrence, so a difference array and one cumulative sum count every row.

A batch these cannot represent exactly (a NaN or infinite value, a sum that would round as a subnormal,
mixed types) raises :class:`Unrepresentable`; the caller then takes the per-event path for that view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Integers of at most this many bits are summed in int64; wider ones as Python integers.
_INT64_BITS = 62
_SMALLEST_NORMAL = 2.2250738585072014e-308


class Unrepresentable(ValueError):
    """A batch whose rows the range queries cannot compute exactly (the per-event path can)."""


class Ranges:
    """Every batch row's window as a range of one array: per entity, its prior rows (from the state, by
    time) then its batch rows (in offset order).

    ``prior_ent``/``prior_time``: the prior rows' entity codes and times (the state's part of each window
    counts from its window start on); ``batch_ent``/``batch_time``: the batch rows' entity codes and event
    times, in offset order; ``window_start``: per batch row, the first time its window holds."""

    def __init__(
        self,
        prior_ent: np.ndarray,
        prior_time: np.ndarray,
        batch_ent: np.ndarray,
        batch_time: np.ndarray,
        window_start: np.ndarray,
    ) -> None:
        self._inputs = (prior_ent, prior_time, batch_ent, batch_time, window_start)
        self.n_prior = n_prior = len(prior_ent)
        # The prior rows by (entity, time), then a stable sort by entity keeps them (first in the
        # concatenation) ahead of the batch rows (in offset order).
        by_time = np.lexsort((prior_time, prior_ent)) if n_prior else np.zeros(0, dtype=np.int64)
        ent = np.concatenate([prior_ent[by_time], batch_ent]).astype(np.int64)
        time = np.concatenate([prior_time[by_time], batch_time]).astype(np.int64)
        source = np.concatenate([by_time, np.arange(n_prior, len(ent))])
        small = ent.astype(np.uint16) if len(ent) and int(ent.max()) < 1 << 16 else ent  # radix-sorted: O(n)
        order = np.argsort(small, kind="stable")
        #: combined position -> index in (prior rows as given, batch rows)
        self.take = source[order]
        self.ent = ent = ent[order]
        time = time[order]
        base = int(time.min())
        span = int(time.max()) - base + 1
        if (int(ent.max()) + 1) * span >= 1 << 62:
            raise Unrepresentable("the batch's times span too much to lay out")
        key = ent * span + (time - base)
        if len(key) > 1 and bool(np.any(key[1:] < key[:-1])):
            raise Unrepresentable("an entity's rows are not in event-time order")
        position = np.empty_like(self.take)
        position[self.take] = np.arange(len(ent))
        #: per batch row: its own position, and its window's first position
        self.hi = position[n_prior:]
        #: batch rows in layout order (by entity, then offset), where window starts never decrease
        self.batch_order = self.take[self.take >= n_prior] - n_prior
        ordered = self.batch_order
        starts = batch_ent[ordered].astype(np.int64) * span + np.clip(
            window_start[ordered].astype(np.int64) - base, 0, None
        )
        self.lo = np.empty(len(batch_ent), dtype=np.int64)
        self.lo[ordered] = np.searchsorted(key, starts, side="left")  # sorted queries: one sweep
        self.size = len(key)
        self._sums: dict[int, tuple[np.ndarray, int]] = {}  # id(batch column) -> (prefix sums, exponent)

    def expanded(self, sizes: Sequence[int]) -> Ranges:
        """The same batch with prior row *k* repeated ``sizes[k]`` times (one per value of a set state)."""
        prior_ent, prior_time, *batch = self._inputs
        repeats = np.asarray(sizes, dtype=np.int64)
        return Ranges(np.repeat(prior_ent, repeats), np.repeat(prior_time, repeats), *batch)

    def combine(self, prior: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Prior and batch values in combined order."""
        return np.concatenate([prior, batch])[self.take]

    def total(self, prior: Sequence[int], batch: np.ndarray) -> np.ndarray:
        """Per batch row, the sum of integer weights over its window."""
        values = self.combine(np.asarray(prior, dtype=np.int64), batch.astype(np.int64))
        prefix = np.concatenate([[0], np.cumsum(values)])
        return prefix[self.hi + 1] - prefix[self.lo]

    def exact_sum(self, prior: Sequence[list[Any]], batch: pa.Array) -> np.ndarray:
        """Per batch row, the exactly rounded sum over its window (``math.fsum``'s value): ``prior`` holds
        each prior row's exact partials (:mod:`.exact_sum`), ``batch`` the batch values. The prefix sums are
        kept per ``batch`` column: a sum and a mean of one column share them, as their prior partials hold
        the same exact sums."""
        cached = self._sums.get(id(batch))
        if cached is None:
            cached = self._sums[id(batch)] = self._prefix_sums(prior, batch.to_numpy(zero_copy_only=False))
        prefix, exponent = cached
        return _to_floats(prefix[self.hi + 1] - prefix[self.lo], exponent)

    def _prefix_sums(self, prior: Sequence[list[Any]], batch: np.ndarray) -> tuple[np.ndarray, int]:
        flat = [x for partials in prior for x in partials]
        bounds = np.concatenate([[0], np.cumsum([len(p) for p in prior], dtype=np.int64)])
        if batch.dtype.kind in "iu":
            if not all(type(x) is int for x in flat):
                raise Unrepresentable("an integer column with float partials")
            scaled, exponent = _python_ints(np.concatenate([np.asarray(flat, dtype=object), batch.astype(object)]))
        elif batch.dtype.kind == "f":
            if not all(type(x) is float for x in flat):
                raise Unrepresentable("a float column with integer partials")
            scaled, exponent = _scaled_ints(np.concatenate([np.asarray(flat, dtype=np.float64), batch]))
        else:
            raise Unrepresentable(f"a sum over values of type {batch.dtype}")
        partial_sums = np.concatenate([np.zeros(1, dtype=scaled.dtype), np.cumsum(scaled[: len(flat)])])
        per_prior = partial_sums[bounds[1:]] - partial_sums[bounds[:-1]]  # each prior row's exact sum
        values = self.combine(per_prior, scaled[len(flat) :])
        return np.concatenate([np.zeros(1, dtype=values.dtype), np.cumsum(values)]), exponent

    def extreme(self, prior: Sequence[Any], batch: pa.Array, pick: Callable[..., np.ndarray]) -> Any:
        """Per batch row, the max (``pick=np.maximum``) or min (``np.minimum``) over its window."""
        combined = pa.concat_arrays([_arrow(prior, batch.type), batch]).take(pa.array(self.take))
        if pa.types.is_floating(batch.type) or pa.types.is_integer(batch.type):
            values = combined.to_numpy(zero_copy_only=False)
            if values.dtype.kind == "f" and bool(np.isnan(values).any()):
                raise Unrepresentable("a NaN in a min or max column")
            return _range_pick(values, self.lo, self.hi, pick)
        ranks = pc.rank(combined, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
        at_rank = np.empty(int(ranks.max()) + 1, dtype=np.int64)
        at_rank[ranks] = np.arange(len(ranks))
        picked = _range_pick(ranks, self.lo, self.hi, pick)
        return combined.take(pa.array(at_rank[picked]))

    def distinct(self, prior: Sequence[set[Any]], batch: pa.Array) -> np.ndarray:
        """Per batch row, the number of distinct values over its window (``prior``: each prior row's set)."""
        sizes = [len(s) for s in prior]
        ranges = self if all(n == 1 for n in sizes) else self.expanded(sizes)
        flat = _arrow([v for values in prior for v in values], batch.type)
        combined = pa.concat_arrays([flat, batch]).take(pa.array(ranges.take))
        if pa.types.is_floating(batch.type):
            if pc.any(pc.is_nan(combined)).as_py():
                raise Unrepresentable("a NaN in a distinct count")
            combined = pc.add(combined, pa.scalar(0.0, batch.type))  # -0.0 and 0.0 are one value in a set
        codes = pc.dictionary_encode(combined).indices.to_numpy().astype(np.int64)
        ent, n = ranges.ent, ranges.size
        # the next occurrence of each row's (entity, value), or n
        width = int(codes.max()) + 1
        if (int(ent.max()) + 1) * width >= 1 << 62:
            raise Unrepresentable("too many entities and values to lay out")
        same = np.argsort(ent * width + codes, kind="stable")
        follows = np.full(n, n, dtype=np.int64)
        repeat = (ent[same][1:] == ent[same][:-1]) & (codes[same][1:] == codes[same][:-1])
        follows[same[:-1][repeat]] = same[1:][repeat]
        # the first batch position whose window starts after each row (lo is non-decreasing)
        lo_sorted, hi_sorted = ranges.lo[ranges.batch_order], ranges.hi[ranges.batch_order]
        leave = np.searchsorted(lo_sorted, np.arange(n), side="right")
        leaves_at = np.append(hi_sorted, n)[leave]
        ends = np.minimum(follows, leaves_at)
        delta = np.ones(n + 1, dtype=np.int64) - np.bincount(ends, minlength=n + 1)
        return np.cumsum(delta)[ranges.hi]


def _arrow(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """State values as an array of the batch column's type (refused if they do not fit it)."""
    try:
        return pa.array(list(values), type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        raise Unrepresentable(f"state values that are not {kind}") from exc


def _range_pick(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, pick: Callable[..., np.ndarray]) -> np.ndarray:
    """``pick`` over ``values[lo:hi + 1]`` for every (lo, hi), by a sparse table of powers of two. Like the
    per-event state (``value > current``), the earliest of equal extremes wins (-0.0 and 0.0 are equal)."""
    better = np.greater if pick is np.maximum else np.less

    def earliest(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.where(better(values[right], values[left]), right, left)

    lengths = hi - lo + 1
    levels = [np.arange(len(values))]  # level k: per start, where the extreme of the next 2**k values is
    while (1 << len(levels)) <= int(lengths.max()):
        previous, half = levels[-1], 1 << (len(levels) - 1)
        levels.append(earliest(previous[:-half], previous[half:]))
    level = np.frexp(lengths.astype(np.float64))[1].astype(np.int64) - 1  # floor(log2(length))
    result = np.empty(len(lo), dtype=np.int64)
    for k in np.unique(level).tolist():
        rows = np.flatnonzero(level == k)
        table = levels[k]
        result[rows] = earliest(table[lo[rows]], table[hi[rows] - (1 << k) + 1])
    return values[result]


def _scaled_ints(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Finite floats as exact integers ``n`` with ``value == n * 2**exponent``, one exponent for all."""
    if not bool(np.isfinite(values).all()):
        raise Unrepresentable("a NaN or infinite value in a sum")
    mantissa, power = np.frexp(values)
    ints = np.ldexp(mantissa, 53).astype(np.int64)  # exact: 53 bits
    powers = power.astype(np.int64) - 53
    nonzero = ints != 0
    if not bool(nonzero.any()):
        return np.zeros(len(values), dtype=np.int64), 0
    exponent = int(powers[nonzero].min())
    shifts = np.where(nonzero, powers - exponent, 0)
    if int(shifts.max()) + 54 + len(values).bit_length() <= _INT64_BITS:
        return ints << shifts, exponent
    return np.left_shift(ints.astype(object), shifts.astype(object)), exponent  # Python ints, in C loops


def _python_ints(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integers as they are (exponent 0), in int64 when they stay small enough."""
    widest = max((abs(int(v)).bit_length() for v in values), default=0)
    if widest + len(values).bit_length() <= _INT64_BITS:
        return values.astype(np.int64), 0
    return values, 0


def _to_floats(sums: np.ndarray, exponent: int) -> np.ndarray:
    """Exact integer sums times ``2**exponent``, each rounded once, as floats."""
    try:  # int64 or Python int -> float rounds to nearest even; scaling by a power of two is then exact
        floats = np.ldexp(sums.astype(np.float64), exponent)
    except OverflowError as exc:  # a Python int past the float range
        raise Unrepresentable("a sum beyond the float range") from exc
    tiny = (floats != 0) & (np.abs(floats) < _SMALLEST_NORMAL)
    if bool(tiny.any()) or not bool(np.isfinite(floats).all()):
        raise Unrepresentable("a sum that rounds as a subnormal or overflows")
    return floats
