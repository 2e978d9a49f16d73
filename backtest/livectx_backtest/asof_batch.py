"""A replay batch's as-of features at once, with the engine's batch path instead of one event at a time.

:class:`~livectx_backtest.asof.AsOfFeatures` feeds every event through ``GroupState.apply`` and reads
``GroupState.row`` after each scored one: about 15,000 events/s per process, most of a backtest's time.
The streaming engine already computes "the online row after every event of a batch" for its offline copy
(:func:`livectx.features.running_rows.running_rows`, through
:class:`~livectx.features.batch_apply.BatchApplier`, equal to the per-event rows bit for bit), and
decodes whole batches as columns (:mod:`livectx.serde_columns`). Here both serve the backtest:

1. the batch's records are decoded per event type as Arrow columns (a batch the column decoder leaves to
   pydantic goes event by event, as before, with its bad records counted by reason);
2. every group takes the batch through ``BatchApplier.apply`` with a sink that keeps the row after each
   event: the running rows of in-order entities, ``GroupState.row`` for entities the batch path takes
   event by event (out of order, late);
3. a scored event reads its own groups' rows directly; a group over another source is read as of the
   scored event's position: the row after that entity's last accepted event before it (in this batch,
   found by a sorted search, else the one kept from earlier batches), missing past the group's TTL, as
   :meth:`AsOfFeatures._score` reads it.

The result is the per-event path's, bit for bit (``tests/unit/test_backtest_asof.py`` compares both on
out-of-order streams split into batches, with fallbacks between them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

from livectx.features.batch_apply import SEQ, TS, BatchApplier, EntityOrder
from livectx.features.incremental import GroupState
from livectx.features.running_rows import RunningRows
from livectx.serde_columns import BatchDecoder, column_decoder

if TYPE_CHECKING:
    from livectx.events import Event
    from livectx_backtest.asof import AsOfFeatures, ReplayCounts

#: Entity codes and positions (or event times) share one int64: code << SHIFT | value (values < 2**42:
#: epoch milliseconds until the year 2109, positions beyond any replay), codes < 2**21 per batch.
SHIFT = 42
NUMERIC = (float, bool, int)
MISSING = np.iinfo(np.int64).min
#: Aggregations whose result is a number whatever the column (the others return a column's own values).
NUMERIC_RESULTS = {"count", "sum", "mean", "distinct_count"}


class RowSink:
    """Keeps, for one group and one batch, the online row after each event ``BatchApplier.apply`` applied:
    the in-order rows at once (:meth:`rows`), and the rows it took event by event (:meth:`event`)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.running: RunningRows | None = None
        #: per event taken one by one, in the order applied: (accepted, the row's values then)
        self.events: list[tuple[bool, list[float]]] = []

    def event(self, state: GroupState, entity: str, ts: int, seq: int, accepted: bool) -> None:
        values = state.row(entity).values
        self.events.append((accepted, [float(values[n] or 0.0) for n in self.names]))

    def rows(self, state: GroupState, rows: RunningRows) -> None:
        self.running = rows


class BatchAsOf:
    """The batch path of one :class:`AsOfFeatures`; :meth:`of` is ``None`` where it cannot take its groups."""

    def __init__(
        self, features: AsOfFeatures, decoders: dict[type[Event], BatchDecoder], appliers: list[BatchApplier]
    ) -> None:
        self.features = features
        self.decoders = decoders
        self.appliers = appliers
        self.names = [[f.name for f in s.group.features] for s in features.states]
        self.fed = 0  # batches applied on this path

    @classmethod
    def of(cls, features: AsOfFeatures) -> BatchAsOf | None:
        decision, scored = features.decision, features.scored_type
        decoders = {t: column_decoder(t) for t in features.used}
        if any(d is None for d in decoders.values()):
            return None
        appliers = [BatchApplier.for_group(s.group, s.columns) for s in features.states]
        if any(a is None for a in appliers):
            return None
        if any(_annotation(s.group.event_type, s.group.entity_key) is not str for s in features.states):
            return None
        if any(_annotation(scored, name) not in NUMERIC for name in decision.inputs):
            return None
        if decision.label is not None and _annotation(scored, decision.label) not in NUMERIC:
            return None
        for s in features.states:
            for f in s.group.features:
                if f.aggregation not in NUMERIC_RESULTS and _annotation(s.group.event_type, f.column) not in NUMERIC:
                    return None
        return cls(features, decoders, appliers)  # type: ignore[arg-type]

    def feed(self, batch: pa.RecordBatch, positions: np.ndarray, types: list[Any], counts: ReplayCounts) -> bool:
        """Apply ``batch`` (``types``: each record's event type, or ``None`` for one not fed; ``counts``: what
        its classification counted). ``False``, with nothing applied, when a record needs the per-event path."""
        values = batch.column("value").to_pylist()
        offsets = batch.column("offset").to_numpy(zero_copy_only=False).astype(np.int64)
        tables: dict[Any, tuple[pa.Table, np.ndarray]] = {}
        for event_type in self.features.used:
            picked = np.fromiter((t is event_type for t in types), bool, len(types)).nonzero()[0]
            if len(picked) == 0:
                continue
            table = self.decoders[event_type].decode([values[i] for i in picked])
            if table is None:
                return False
            tables[event_type] = (table.append_column(SEQ, pa.array(offsets[picked])), positions[picked])
        features = self.features
        features.counts.add(counts)
        for event_type, (table, _) in tables.items():
            features.counts.by_type[event_type.schema_name] += table.num_rows
        scored = tables.get(features.scored_type)
        matrix = None if scored is None else np.zeros((scored[0].num_rows, len(features.columns)))
        if scored is not None:
            for i in features.own:
                self._write(matrix, i, self._apply(i, scored[0]).values)  # type: ignore[arg-type]
        for event_type, ids in features.other.items():
            if event_type in tables or scored is not None:
                for i in ids:
                    self._context(i, tables.get(event_type), scored, matrix)
        if scored is not None:
            self._emit(scored, matrix)  # type: ignore[arg-type]
        self.fed += 1
        return True

    def _apply(self, i: int, table: pa.Table) -> _Applied:
        """Group ``i`` takes ``table``: per row (in table order), whether it was accepted and its row after."""
        state, names = self.features.states[i], self.names[i]
        order = EntityOrder.of(table, state.group.entity_key)
        disordered = BatchApplier.disordered(state, order)
        in_order = ~np.isin(order.codes, list(disordered)) if disordered else np.ones(table.num_rows, bool)
        sink = RowSink(names)
        _touched, late = self.appliers[i].apply(state, table, order, sink)
        self.features.counts.late += len(late)
        values = np.zeros((table.num_rows, len(names)))
        accepted = np.ones(table.num_rows, bool)
        one_by_one = np.flatnonzero(~in_order)
        kept = np.flatnonzero(in_order)
        if sink.running is None:  # the in-order rows too went event by event (values the ranges cannot take)
            one_by_one = np.concatenate([one_by_one, kept])
        else:
            running = sink.running
            assert np.array_equal(running.offsets, table.column(SEQ).to_numpy()[kept]), "rows out of step"
            for j, name in enumerate(names):
                values[kept, j] = _floats(running.values[name])
        assert len(sink.events) == len(one_by_one), "rows out of step"
        for row, (ok, row_values) in zip(one_by_one.tolist(), sink.events, strict=True):
            accepted[row] = ok
            values[row] = row_values
        return _Applied(values, accepted, order.codes.astype(np.int64), order.names)

    def _write(self, matrix: np.ndarray, i: int, values: np.ndarray, where: np.ndarray | None = None) -> None:
        """Group ``i``'s features into the model columns they fill (``where``: only those rows)."""
        for j, name in enumerate(self.names[i]):
            if name in self.features.columns:
                column = self.features.columns.index(name)
                if where is None:
                    matrix[:, column] = values[:, j]
                else:
                    matrix[where, column] = values[where, j]

    def _context(
        self,
        i: int,
        source: tuple[pa.Table, np.ndarray] | None,
        scored: tuple[pa.Table, np.ndarray] | None,
        matrix: np.ndarray | None,
    ) -> None:
        """Group ``i`` over another source takes its events (``source``), and each scored event reads its
        row as of its position: the row after the entity's last accepted event before it, kept only while
        the entity's newest event is within the group's TTL."""
        features, state, names = self.features, self.features.states[i], self.names[i]
        kept = features.latest_rows[i]
        entities: list[str] = [] if scored is None else scored[0].column(features.decision.entity_key).to_pylist()
        # As of the batch's start: the entity's newest event time (MISSING: none yet) and kept row.
        prior = {e: (state.newest.get(e, MISSING), kept.get(e)) for e in dict.fromkeys(entities)}
        newest_at = np.fromiter((prior[e][0] for e in entities), np.int64, len(entities))
        values = np.zeros((len(entities), len(names)))
        found = np.zeros(len(entities), bool)
        if source is not None:
            table, positions = source
            applied = self._apply(i, table)
            codes, by_code = applied.codes, applied.names  # the entities as the batch path encoded them
            ok = applied.accepted
            order = np.lexsort((positions[ok], codes[ok]))  # by entity, then position
            c, p, rows = codes[ok][order], positions[ok][order], applied.values[ok][order]
            t = table.column(TS).to_numpy()[ok][order].astype(np.int64)
            newest = np.maximum.accumulate((c << SHIFT) | t) - (c << SHIFT)  # per entity, its newest so far
            last = np.flatnonzero(np.r_[c[1:] != c[:-1], True]) if len(c) else np.zeros(0, np.int64)
            for k in last.tolist():  # each entity's last row
                kept[by_code[c[k]]] = dict(zip(names, rows[k].tolist(), strict=True))
            if entities and len(c):
                lookup = {name: code for code, name in enumerate(by_code)}
                wanted = np.fromiter((lookup.get(e, -1) for e in entities), np.int64, len(entities))
                at = np.searchsorted((c << SHIFT) | p, (np.maximum(wanted, 0) << SHIFT) | scored[1]) - 1  # type: ignore[index]
                found = (wanted >= 0) & (at >= 0) & (c[np.maximum(at, 0)] == wanted)
                values[found] = rows[at[found]]
                newest_at[found] = np.maximum(newest_at[found], newest[at[found]])
        if scored is None or matrix is None:
            return
        for row in np.flatnonzero(~found & (newest_at != MISSING)).tolist():  # read from an earlier batch's row
            row_values = prior[entities[row]][1]
            values[row] = [float(row_values[n] or 0.0) for n in names]  # type: ignore[index]
        ts = scored[0].column(TS).to_numpy().astype(np.int64)
        self._write(matrix, i, values, (newest_at != MISSING) & (newest_at + features.ttl_ms[i] >= ts))

    def _emit(self, scored: tuple[pa.Table, np.ndarray], matrix: np.ndarray) -> None:
        table, positions = scored
        s, d = self.features.scored, self.features.decision
        inputs = [_floats(table.column(name)) for name in d.inputs]
        full = np.column_stack([matrix, *inputs]) if inputs else matrix
        s.position.extend(positions.tolist())
        s.event_ms.extend(table.column(TS).to_pylist())
        s.id.extend(str(v) for v in table.column(d.id_field).to_pylist())
        s.entity.extend(table.column(d.entity_key).to_pylist())
        if d.label is not None:
            s.label.extend(bool(v) for v in table.column(d.label).to_pylist())
        s.rows.extend(full.tolist())


class _Applied(NamedTuple):
    """Per row of a group's table: its row's values after it, whether it was accepted, its entity's code."""

    values: np.ndarray
    accepted: np.ndarray
    codes: np.ndarray
    names: list[str]  # entity names by code


def _floats(column: Any) -> np.ndarray:
    """As ``model_row`` reads a value: ``float(v or 0.0)`` (so -0.0 reads 0.0, NaN stays NaN)."""
    if isinstance(column, pa.ChunkedArray | pa.Array):
        column = column.to_numpy(zero_copy_only=False)
    out = np.asarray(column, dtype=np.float64).copy()
    out[out == 0] = 0.0
    return out


def _annotation(event_type: type[Event], field: str | None) -> Any:
    info = event_type.model_fields.get(field) if field is not None else None
    return None if info is None else info.annotation
