"""The aggregation kinds: one object per kind owns everything that kind means, wherever it is computed.

Each kind gives its empty state, the per-event ``adder`` closure (built once per feature: the engine's
inner loop calls it with no dispatch), the result of a state, the result over several buckets' states
(``over_states``) and over a column of raw values (``over_columns``), the JSON form of its state
(``dump``/``load``), its Arrow batch aggregate and merge (:mod:`~livectx.features.batch_apply`) and its
point-in-time SQL (:mod:`~livectx.features.pit_sql`). Keeping all of it in one place is what keeps the
engine, the batch path, the recomputation and the SQL agreeing value for value; :data:`KINDS` maps each
name of :data:`~livectx.features.spec.Aggregation` to its object.

States are plain values (int, float, list, set) so they serialise as JSON; sums keep exact partials
(:mod:`~livectx.features.exact_sum`). The dumped form is what running workers keep in Redis: it must not
change (``tests/unit/test_aggregation_kinds_dump.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from livectx.features.exact_sum import exact_add, fold_exact

if TYPE_CHECKING:
    import pyarrow as pa

    from livectx.features.ranges import Ranges

#: An event's state update: ``(state, ts, seq, values) -> state``.
Adder = Callable[[Any, int, int, tuple[Any, ...]], Any]
#: Column names of the batch path's Arrow tables: event time and consumption order.
TS = "event_time_ms"
SEQ = "_seq"


class AggregationKind:
    """One aggregation kind. Stateless: features share the object and pass their column index."""

    name: ClassVar[str]
    #: Whether a state is JSON as it is (``dump``/``load`` are the identity): lets dumps skip the codec.
    plain_state: ClassVar[bool] = True

    def empty(self) -> Any:
        return None

    def adder(self, col: int | None) -> Adder:
        """The per-event update for values at index ``col``, specialised (no dispatch per event)."""
        raise NotImplementedError

    def where_adder(self, col: int | None, where_col: int, wanted: Any) -> Adder:
        """``adder`` for only the events whose value at ``where_col`` equals ``wanted``."""
        add = self.adder(col)
        return lambda s, ts, seq, v: add(s, ts, seq, v) if v[where_col] == wanted else s

    def result(self, state: Any) -> Any:
        return state

    def over_states(self, states: list[Any]) -> Any:
        """The result over several buckets' states (a hopping window), without building a merged state."""
        raise NotImplementedError

    def over_columns(self, values: list[Any]) -> Any:
        """The result over one window's values, sorted by (event time, consumption order)."""
        raise NotImplementedError

    def over_events(self, values: list[Any], times: list[int]) -> Any:
        """The result over values in consumption order with their event times (the recomputation)."""
        return self.over_columns(values)

    def dump(self, state: Any) -> Any:
        return state

    def load(self, state: Any) -> Any:
        return state

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        """The Arrow ``group_by`` aggregates :meth:`merge_batch` takes, in order."""
        raise NotImplementedError

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        """Merge per-bucket batch aggregates into state slot ``j`` of each target bucket, column-wise."""
        raise NotImplementedError

    def sql(self, column: str | None, where: str, window: str) -> str:
        """The DuckDB window expression (``where``: a ``FILTER`` clause or empty)."""
        raise NotImplementedError

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        """The result after each batch row, over its window (:mod:`~livectx.features.ranges`): ``prior``
        holds the states of the rows before the batch, ``batch`` the column's values, ``mask`` whether each
        batch row passes the feature's ``where`` (None: every row). A numpy or Arrow array where it can be
        (no Python object per row)."""
        raise NotImplementedError


class Count(AggregationKind):
    name = "count"

    def empty(self) -> Any:
        return 0

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: s + 1

    def where_adder(self, col: int | None, where_col: int, wanted: Any) -> Adder:
        return lambda s, ts, seq, v: s + 1 if v[where_col] == wanted else s

    def over_states(self, states: list[Any]) -> Any:
        return sum(states)

    def over_columns(self, values: list[Any]) -> Any:
        return len(values)

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        """Rows counted, or (``column``: a 0/1 mask of the ``where``) summed."""
        return [(TS, "count")] if column == TS else [(column, "sum")]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        for bucket, n in zip(targets, aggregates[0], strict=True):
            bucket[j] += n

    def sql(self, column: str | None, where: str, window: str) -> str:
        return f"count(*){where} OVER {window}"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        return q.total(prior, np.ones(len(batch), dtype=np.int64) if mask is None else mask)


class Sum(AggregationKind):
    name = "sum"

    def empty(self) -> Any:
        return []  # exact partial sums (empty: no values)

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: exact_add(s, v[col]) or s

    def result(self, state: Any) -> Any:
        return math.fsum(state) if state else None

    def over_states(self, states: list[Any]) -> Any:
        return math.fsum([x for s in states for x in s]) if any(states) else None

    def over_columns(self, values: list[Any]) -> Any:
        return math.fsum(values) if values else None

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        return [(column, "list")]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        for bucket, values in zip(targets, aggregates[0], strict=True):
            fold_exact(bucket[j], values)

    def sql(self, column: str | None, where: str, window: str) -> str:
        return f"CAST(sum({column}){where} OVER {window} AS DOUBLE)"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        return q.exact_sum(prior, batch)


class Mean(AggregationKind):
    name = "mean"

    def empty(self) -> Any:
        return [[], 0]  # (exact partial sums, count)

    def adder(self, col: int | None) -> Adder:
        def add(s: Any, ts: int, seq: int, v: tuple[Any, ...]) -> Any:
            exact_add(s[0], v[col])
            s[1] += 1
            return s

        return add

    def result(self, state: Any) -> Any:
        return math.fsum(state[0]) / state[1] if state[1] else None

    def over_states(self, states: list[Any]) -> Any:
        count = sum(s[1] for s in states)
        return math.fsum([x for s in states for x in s[0]]) / count if count else None

    def over_columns(self, values: list[Any]) -> Any:
        return math.fsum(values) / len(values) if values else None

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        return [(column, "list")]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        for bucket, values in zip(targets, aggregates[0], strict=True):
            state = bucket[j]
            fold_exact(state[0], values)
            state[1] += len(values)

    @staticmethod
    def merge_from_sum(sum_slot: int) -> Callable[..., None]:
        """A batch merge that copies the partials of a sum of the same column (same values, same
        algorithm: the same exact partials) instead of folding the values again; it takes the counts."""

        def merge(j: int, targets: list[list[Any]], counts: list[int]) -> None:
            for bucket, n in zip(targets, counts, strict=True):
                state = bucket[j]
                state[0][:] = bucket[sum_slot]
                state[1] += n

        return merge

    def sql(self, column: str | None, where: str, window: str) -> str:
        return f"CAST(avg({column}){where} OVER {window} AS DOUBLE)"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        sums = q.exact_sum([s[0] for s in prior], batch)
        counts = q.total([s[1] for s in prior], np.ones(len(batch), dtype=np.int64))
        return sums / counts


class _Extremum(AggregationKind):
    """``max`` or ``min``: the kind's ``name`` is also its Arrow aggregate and its SQL function, and ``pick``
    the builtin that keeps the extreme of two values (the earlier one on a tie or an unordered NaN, as
    ``value > current`` / ``value < current`` would). The per-event adders stay written out: the engine's
    inner loop compares inline."""

    pick: ClassVar[Callable[..., Any]]

    def over_states(self, states: list[Any]) -> Any:
        present = [s for s in states if s is not None]
        return self.pick(present) if present else None

    def over_columns(self, values: list[Any]) -> Any:
        return self.pick(values) if values else None

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        return [(column, self.name)]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        pick = self.pick
        for bucket, value in zip(targets, aggregates[0], strict=True):
            current = bucket[j]
            bucket[j] = value if current is None else pick(current, value)

    def sql(self, column: str | None, where: str, window: str) -> str:
        return f"CAST({self.name}({column}){where} OVER {window} AS DOUBLE)"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        return q.extreme(prior, batch, np.maximum if self.pick is max else np.minimum)


class Max(_Extremum):
    name = "max"
    pick = max

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: v[col] if s is None or v[col] > s else s


class Min(_Extremum):
    name = "min"
    pick = min

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: v[col] if s is None or v[col] < s else s


class Last(AggregationKind):
    """The value of the latest event by event time, ties to the later arrival (``seq``)."""

    name = "last"

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: [ts, seq, v[col]] if s is None or (ts, seq) > (s[0], s[1]) else s

    def result(self, state: Any) -> Any:
        return None if state is None else state[2]

    def over_states(self, states: list[Any]) -> Any:
        present = [s for s in states if s is not None]
        return max(present, key=lambda s: (s[0], s[1]))[2] if present else None

    def over_columns(self, values: list[Any]) -> Any:
        return values[-1] if values else None  # sorted by (ts, seq): the newest, ties to the later arrival

    def over_events(self, values: list[Any], times: list[int]) -> Any:
        return max(zip(times, range(len(values)), values, strict=True))[2] if values else None

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        return [(TS, "max"), (SEQ, "max"), (column, "last")]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        times, seqs, values = aggregates
        for bucket, ts, seq, value in zip(targets, times, seqs, values, strict=True):
            current = bucket[j]
            if current is None or (ts, seq) > (current[0], current[1]):
                bucket[j] = [ts, seq, value]

    def sql(self, column: str | None, where: str, window: str) -> str:  # as the recomputation: time, then order
        return f"CAST(arg_max({column}, struct_pack(t := ts, o := ord)){where} OVER {window} AS DOUBLE)"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        return batch  # in order: each row is its window's newest event (ties: the later offset)


class DistinctCount(AggregationKind):
    """A set per bucket; dumped as a sorted list (the only state that is not JSON as it is)."""

    name = "distinct_count"
    plain_state = False

    def empty(self) -> Any:
        return set()

    def adder(self, col: int | None) -> Adder:
        return lambda s, ts, seq, v: s.add(v[col]) or s

    def result(self, state: Any) -> Any:
        return len(state)

    def over_states(self, states: list[Any]) -> Any:
        return len(set().union(*states))

    def over_columns(self, values: list[Any]) -> Any:
        return len(set(values))

    def dump(self, state: Any) -> Any:
        try:
            return sorted(state)  # one type (the usual case): natural order, and fast
        except TypeError:
            return sorted(state, key=repr)

    def load(self, state: Any) -> Any:
        return set(state)

    def batch_inputs(self, column: str) -> list[tuple[str, str]]:
        return [(column, "distinct")]

    def merge_batch(self, j: int, targets: list[list[Any]], *aggregates: list[Any]) -> None:
        for bucket, values in zip(targets, aggregates[0], strict=True):
            bucket[j].update(values)

    def sql(self, column: str | None, where: str, window: str) -> str:
        return f"count(DISTINCT {column}){where} OVER {window}"

    def running(self, q: Ranges, prior: list[Any], batch: pa.Array, mask: np.ndarray | None) -> Sequence[Any]:
        return q.distinct(prior, batch)


#: Aggregation name -> its kind (every name of :data:`~livectx.features.spec.Aggregation`).
KINDS: dict[str, AggregationKind] = {k.name: k for k in (Count(), Sum(), Mean(), Min(), Max(), DistinctCount(), Last())}


def kind_of(name: str) -> AggregationKind:
    """The kind called ``name``; ``ValueError`` for an unknown one."""
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(name)
    return kind
