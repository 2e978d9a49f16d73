"""Aggregates over a table's current rows, kept incrementally from its Debezium changelog.

A windowed view folds events; a table's changelog must *retract* instead: an update moves a row's
contribution (from the old entity to the new one, when the grouping column changed), a delete removes it.
The state is what makes that exact under Kafka Connect's at-least-once delivery:

- per row key, the row's last contribution, so a change's delta is taken against what was really added (a
  re-applied change retracts its own effect first: re-sends converge), and the WAL position (``cdc_lsn``)
  it came from; a change whose LSN is not newer is a re-send (Connect restarted before flushing its
  offsets) and is skipped, so the values served meanwhile never go back to an older state;
- a delete leaves a marker with its LSN, so a re-sent older insert of that row stays deleted;
- snapshot reads (``r``) carry the snapshot's LSN, so changes from before it that the slot streams again
  afterwards are skipped too: the snapshot already holds their effect;
- per entity, the live rows' ``count`` and the exact ``sum`` of each value column (integers stay integers,
  other floats are summed as exact fractions: a long run of retractions never drifts from what a
  recomputation from the table gives, as a float running sum would).

Pure Python on plain values, like :mod:`livectx.features.incremental`, so the engine checkpoints it with
its offsets (:meth:`ChangelogAggregate.dump` per row key) and a test compares it with a recomputation.

Grouped by a column other than the table's key, one entity's rows are spread over the topic's
partitions; the engine then reads a repartition topic keyed by the entity (:func:`routes` says where each
change goes, a moved row's retraction included), so every partition's aggregate holds whole entities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from typing import Any

from livectx.cdc.envelope import unwrap
from livectx.events import Event
from livectx.features.incremental import WindowRow
from livectx.features.spec import Feature, FreshnessColumns

#: The aggregations a retraction can undo exactly (a min, max or last would need every live value kept).
RETRACTABLE = ("count", "sum", "mean")
Number = int | Fraction


@dataclass(frozen=True)
class ChangelogGroup(FreshnessColumns):
    """A feature view over a table's current rows (no window): ``count``/``sum``/``mean`` per entity.

    Duck-compatible with :class:`~livectx.features.spec.FeatureGroup` where the online store's layout
    and writer look (name, features, entity key, freshness columns, ttl), so its rows are Feast's rows;
    the window end column is written as 0 (a table's rows have no window)."""

    name: str
    source_topic: str
    event_type: type[Event]
    entity: str
    entity_key: str  # the grouping column (the Feast join key)
    row_key: str  # the table's key column: what identifies a row across its changes
    features: tuple[Feature, ...]
    description: str = ""
    ttl: timedelta = field(default=timedelta(days=365 * 100))

    def __post_init__(self) -> None:
        for f in self.features:
            if f.aggregation not in RETRACTABLE:
                raise ValueError(f"feature {f.name}: {f.aggregation} over a table's rows is not supported")

    @property
    def columns(self) -> tuple[str, ...]:
        """The value columns summed (each ``sum`` or ``mean`` feature's column, once)."""
        return tuple(dict.fromkeys(f.column for f in self.features if f.column is not None))

    @property
    def rekeyed(self) -> bool:
        return self.entity_key != self.row_key


@dataclass
class _Row:
    entity: str | None  # None: deleted (the marker keeps the LSN)
    values: tuple[Number, ...]
    lsn: int
    ts: int  # the change's commit time (epoch ms)


def _exact(value: Any) -> Number:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    number = float(value)
    return int(number) if number.is_integer() else Fraction(number)


@dataclass
class ChangelogAggregate:
    """``count`` and ``sum`` of ``columns`` per ``entity_column`` value, over the table's live rows."""

    entity_column: str
    columns: tuple[str, ...]
    rows: dict[str, _Row] = field(default_factory=dict)
    totals: dict[str, list[Number]] = field(default_factory=dict)  # entity -> [count, sum per column]
    newest: dict[str, int] = field(default_factory=dict)  # entity -> commit time of its newest change
    #: Row keys changed since the last :meth:`clean` (what a checkpoint must dump).
    dirty: set[str] = field(default_factory=set)

    def apply(self, key: str, row: dict[str, Any] | None, ts: int | None = None) -> set[str]:
        """Apply one flattened change (:func:`livectx.cdc.envelope.flatten`), or a tombstone (``None``).
        ``ts``: the change's commit time in epoch ms (default: the row's ``cdc_ts``; a decoded event holds
        it as its event time instead).

        Returns the entities whose values changed (to write online)."""
        old = self.rows.get(key)
        if row is None:  # the tombstone after a delete: the delete itself already retracted the row
            return set()
        lsn = int(row.get("cdc_lsn") or 0)
        if old is not None and lsn <= old.lsn:
            return set()  # a re-send of a change already applied
        ts = int(row.get("cdc_ts") or 0) if ts is None else ts
        changed = set()
        self.dirty.add(key)
        if old is not None and old.entity is not None:
            self._add(old.entity, old.values, -1)
            changed.add(old.entity)
        if row["cdc_op"] == "d":
            self.rows[key] = _Row(None, (), lsn, ts)
        else:
            entity = row.get(self.entity_column)
            values = tuple(_exact(row.get(c)) for c in self.columns)
            self.rows[key] = _Row(None if entity is None else str(entity), values, lsn, ts)
            if entity is not None:
                self._add(str(entity), values, +1)
                changed.add(str(entity))
        for entity in changed:
            self.newest[entity] = max(self.newest.get(entity, 0), ts)
        return changed

    def _add(self, entity: str, values: tuple[Number, ...], sign: int) -> None:
        total = self.totals.setdefault(entity, [0] * (1 + len(self.columns)))
        total[0] += sign
        for i, value in enumerate(values, start=1):
            total[i] += sign * value
        if total[0] == 0:
            del self.totals[entity]  # no live row left: the entity has no values (not a zero mean)

    def values(self, entity: str) -> dict[str, float] | None:
        """``count`` and ``mean_<column>`` (None: no live row)."""
        total = self.totals.get(entity)
        if total is None:
            return None
        count = total[0]
        means = {f"mean_{c}": float(Fraction(total[i]) / count) for i, c in enumerate(self.columns, 1)}
        return {"count": count, **means}

    def row(self, entity: str, features: tuple[Feature, ...]) -> WindowRow:
        """The entity's online row: its features over the live rows (count 0 and no sum or mean when none)."""
        total = self.totals.get(entity)
        count = 0 if total is None else int(total[0])
        out: dict[str, Any] = {}
        for f in features:
            if f.aggregation == "count":
                out[f.name] = count
                continue
            value = None if total is None else Fraction(total[1 + self.columns.index(f.column)])  # type: ignore[arg-type]
            if value is not None and f.aggregation == "mean":
                value /= count
            out[f.name] = None if value is None else float(value)
        return WindowRow(0, 0, self.newest.get(entity, 0), out)

    def dump(self, key: str) -> bytes:
        """One row key's state, for the checkpoint (exact values: fractions as ``"p/q"``)."""
        row = self.rows[key]
        values = [v if isinstance(v, int) else str(v) for v in row.values]
        return json.dumps([row.entity, values, row.lsn, row.ts], separators=(",", ":")).encode()

    def load(self, key: str, raw: bytes) -> None:
        """Restore one row key dumped by :meth:`dump` (its entity's totals follow)."""
        entity, values, lsn, ts = json.loads(raw)
        exact = tuple(v if isinstance(v, int) else Fraction(v) for v in values)
        self.rows[key] = _Row(entity, exact, lsn, ts)
        if entity is not None:
            self._add(entity, exact, +1)
            self.newest[entity] = max(self.newest.get(entity, 0), ts)

    def clean(self) -> None:
        self.dirty.clear()


def routes(change: dict[str, Any], entity_column: str) -> list[tuple[str, dict[str, Any] | None]]:
    """Where a Debezium change goes when the view groups by ``entity_column``: ``(entity, envelope)`` pairs,
    ``None`` for the change as it is.

    An insert, snapshot read or update goes to its new entity; a delete to its old one; an update that
    moved the row to another entity also sends the old entity a delete of the row (same LSN), so the
    partition holding the old entity retracts it. The old entity comes from the ``before`` image, complete
    with ``REPLICA IDENTITY FULL`` (``livectx cdc apply`` sets it).

    Raises:
        ValueError: a change whose entity cannot be known (the dead-letter reason).
    """
    event = unwrap(change)
    op, before, after = event.get("op"), event.get("before"), event.get("after")
    if op == "d":
        old = (before or {}).get(entity_column)
        if old is None:
            raise ValueError(
                f"delete without {entity_column!r} in its before image: the table needs REPLICA IDENTITY FULL "
                "(livectx cdc apply sets it)"
            )
        return [(str(old), None)]
    new = (after or {}).get(entity_column)
    out: list[tuple[str, dict[str, Any] | None]] = [] if new is None else [(str(new), None)]
    if op == "u":
        if before is None:
            raise ValueError(
                "update without its before image: the table needs REPLICA IDENTITY FULL (livectx cdc apply sets "
                "it), else a row moved to another entity would be counted twice"
            )
        old = before.get(entity_column)
        if old is not None and (new is None or str(old) != str(new)):
            out.append((str(old), {**event, "op": "d", "after": None}))
    return out
