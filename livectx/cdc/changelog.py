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
- per entity, ``count`` and the ``sum`` of each value column (``mean`` = sum / count).

Pure Python on plain values, like :mod:`livectx.features.incremental`, so the engine can checkpoint it
with its offsets and a test can compare it with a recomputation from the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Row:
    entity: str | None  # None: deleted (the marker keeps the LSN)
    values: tuple[float, ...]
    lsn: int


@dataclass
class ChangelogAggregate:
    """``count`` and ``mean`` of ``columns`` per ``entity_column`` value, over the table's live rows."""

    entity_column: str
    columns: tuple[str, ...]
    rows: dict[str, _Row] = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)  # entity -> [count, sum per column]

    def apply(self, key: str, row: dict[str, Any] | None) -> set[str]:
        """Apply one flattened change (:func:`livectx.cdc.envelope.flatten`), or a tombstone (``None``).

        Returns the entities whose values changed (to write online)."""
        old = self.rows.get(key)
        if row is None:  # the tombstone after a delete: the delete itself already retracted the row
            return set()
        lsn = int(row.get("cdc_lsn") or 0)
        if old is not None and lsn <= old.lsn:
            return set()  # a re-send of a change already applied
        changed = set()
        if old is not None and old.entity is not None:
            self._add(old.entity, old.values, -1)
            changed.add(old.entity)
        if row["cdc_op"] == "d":
            self.rows[key] = _Row(None, (), lsn)
            return changed
        entity = row.get(self.entity_column)
        values = tuple(float(row.get(c) or 0.0) for c in self.columns)
        self.rows[key] = _Row(None if entity is None else str(entity), values, lsn)
        if entity is not None:
            self._add(str(entity), values, +1)
            changed.add(str(entity))
        return changed

    def _add(self, entity: str, values: tuple[float, ...], sign: int) -> None:
        total = self.totals.setdefault(entity, [0.0] * (1 + len(self.columns)))
        total[0] += sign
        for i, value in enumerate(values, start=1):
            total[i] += sign * value
        if total[0] == 0:
            del self.totals[entity]  # no live row left: the entity has no values (not a zero mean)

    def values(self, entity: str) -> dict[str, float] | None:
        total = self.totals.get(entity)
        if total is None:
            return None
        count = total[0]
        return {"count": count, **{f"mean_{c}": total[i] / count for i, c in enumerate(self.columns, start=1)}}
