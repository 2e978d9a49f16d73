"""Feature values as of each scored event, recomputed from replayed records with the streaming engine's code.

A decision (:class:`~livectx.repo.decisions.DecisionSpec`) scores the events of one source from one
feature service. Every decoded event goes through :class:`livectx.features.incremental.GroupState` (the
window state the engine keeps), in replay order; right after a scored event is applied, ``row(entity)``
of each group is exactly the online row a live agent would have read for that event. Two economies keep
the semantics:

- rows are read only for scored events, and the row of a group over another source only after one of
  that source's events (it cannot change in between);
- each group keeps only the features some model version reads (every feature's partial aggregate is
  independent of the others, so the kept values are bit-identical to the full group's).

A group over another source whose entity's newest event is older than the group's TTL before the scored
event reads as missing, as Feast (and :mod:`livectx.features.pit_sql`) serve it. The model input is
built with the product's :func:`~livectx.models.rows.model_row`, as live agents build it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx import serde
from livectx.errors import SchemaError
from livectx.events import Event
from livectx.features.incremental import GroupState
from livectx.features.spec import FeatureGroup
from livectx.models.rows import model_row
from livectx.repo.decisions import DecisionSpec

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from livectx.repo.compiled import Repo

SCHEMA_HEADER = serde.SCHEMA_HEADER


def model_groups(service: str, columns: Sequence[str], repo: Repo | None = None) -> list[FeatureGroup]:
    """The service's groups in ``repo`` (default: the current one), each reduced to the features in
    ``columns`` (groups with none are left out)."""
    from livectx.repo import current_repo

    wanted = set(columns)
    groups = []
    for group in (repo or current_repo()).service_groups(service):
        kept = tuple(f for f in group.features if f.name in wanted)
        if kept:
            groups.append(dataclasses.replace(group, features=kept))
    return groups


@dataclass
class Scored:
    """The scored events, columnar, in replay order: identity, label and the model input matrix.

    ``label`` stays empty (and out of :meth:`arrays`) when the decision declares no label."""

    columns: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    labelled: bool = False
    position: list[int] = field(default_factory=list)  # index in the replayed stream
    event_ms: list[int] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    entity: list[str] = field(default_factory=list)
    label: list[bool] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)  # model_row(features, inputs, columns)

    def __len__(self) -> int:
        return len(self.position)

    def arrays(self) -> dict[str, np.ndarray]:
        """Numpy columns; ``label`` only when the events carry one."""
        import numpy as np

        n, width = len(self.position), len(self.columns) + len(self.inputs)
        out = {
            "position": np.asarray(self.position, dtype=np.int64),
            "event_ms": np.asarray(self.event_ms, dtype=np.int64),
            "id": np.asarray(self.id, dtype=object),
            "entity": np.asarray(self.entity, dtype=object),
            "rows": np.asarray(self.rows, dtype=np.float64).reshape(n, width),
        }
        if self.labelled:
            out["label"] = np.asarray(self.label, dtype=bool)
        return out


@dataclass
class ReplayCounts:
    """What the replay held: events by type, bad records by reason, late events (applied to no window)."""

    records: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)
    late: int = 0

    def add(self, other: ReplayCounts) -> None:
        self.records += other.records
        self.by_type.update(other.by_type)
        self.ignored.update(other.ignored)
        self.bad.update(other.bad)
        self.late += other.late


class RecordTypes:
    """Which event type each replayed record is fed as, by its ``livectx-schema`` header; each schema is
    looked up in the repo once."""

    def __init__(self, repo: Repo, used: tuple[type[Event], ...]) -> None:
        self.used = used
        self._repo = repo
        self._known: dict[str | None, tuple[type[Event] | None, str | None, str]] = {}

    def classify(self, schema: str | None, counts: ReplayCounts) -> type[Event] | None:
        """The event type a record of ``schema`` is fed as, or ``None``: then counted in ``counts`` as bad or
        ignored, by reason."""
        known = self._known.get(schema)
        if known is None:
            known = self._known[schema] = self._lookup(schema)
        event_type, tally, reason = known
        if tally is not None:
            getattr(counts, tally)[reason] += 1
        return event_type

    def _lookup(self, schema: str | None) -> tuple[type[Event] | None, str | None, str]:
        """(the event type fed, or None; the counter a record of ``schema`` adds to; under which reason)."""
        if schema is None:
            return None, "bad", "no livectx-schema header"
        event_type = self._repo.event_type(schema.rsplit(".v", 1)[0])
        if event_type is None:
            return None, "bad", f"unknown schema {schema}"
        if event_type not in self.used:
            return None, "ignored", event_type.schema_name
        return event_type, None, ""


class AsOfFeatures:
    """Feeds replayed record batches through the engine's window state; collects each scored event's input."""

    def __init__(
        self, decision: DecisionSpec, columns: Sequence[str], *, batches: bool = True, repo: Repo | None = None
    ) -> None:
        """``repo``: the compiled repo the decision is declared in (default: the current one; a worker
        process is given the one its parent loaded, :mod:`livectx.repo.snapshot`)."""
        from livectx.repo import current_repo
        from livectx_backtest.asof_batch import BatchAsOf

        repo = repo or current_repo()
        self.decision = decision
        self.columns = tuple(columns)
        self.scored_type = repo.model(decision.source)
        groups = model_groups(decision.service, self.columns, repo)
        self.states = [GroupState(g) for g in groups]
        self.ttl_ms = [int(g.ttl.total_seconds() * 1000) for g in groups]
        self.own = [i for i, g in enumerate(groups) if g.event_type is self.scored_type]
        #: per event type of another source: the indexes of its groups
        self.other: dict[type[Event], list[int]] = {}
        for i, g in enumerate(groups):
            if g.event_type is not self.scored_type:
                self.other.setdefault(g.event_type, []).append(i)
        self._types = RecordTypes(repo, (self.scored_type, *self.other))
        #: per other-source group index: entity -> its row's values, refreshed after each of its events
        self.latest_rows: dict[int, dict[str, dict[str, Any]]] = {i: {} for ids in self.other.values() for i in ids}
        self.scored = Scored(self.columns, decision.inputs, decision.label is not None)
        self.counts = ReplayCounts()
        #: the batch path, where the groups allow it
        self._batch = BatchAsOf.of(self) if batches else None

    @property
    def used(self) -> tuple[type[Event], ...]:
        """The event types some group reads: the scored source's first."""
        return self._types.used

    @property
    def columnar_batches(self) -> int:
        """How many fed batches took the batch path."""
        return 0 if self._batch is None else self._batch.fed

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        """One replay batch (the archive's columns); ``first_position`` numbers its first record (a
        ``position`` column, where the records were split over workers, numbers each).

        Whole batches take the engine's batch path (:mod:`livectx_backtest.asof_batch`) where the groups
        and the batch allow it, else every event goes through :meth:`apply`, with the same result."""
        import numpy as np

        if "position" in batch.schema.names:
            positions = batch.column("position").to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            positions = np.arange(first_position, first_position + batch.num_rows, dtype=np.int64)
        counts = ReplayCounts(records=batch.num_rows)
        types = [self._types.classify(schema, counts) for schema in schema_headers(batch)]
        if self._batch is not None and self._batch.feed(batch, positions, types, counts):
            return
        self.counts.add(counts)
        values = batch.column("value").to_pylist()
        offsets = batch.column("offset").to_pylist()
        for i, (value, event_type) in enumerate(zip(values, types, strict=True)):
            if event_type is None:
                continue
            try:
                event = serde.decode(event_type, value)
            except SchemaError as exc:
                self.counts.bad[str(exc)[:120]] += 1
                continue
            self.apply(event, offsets[i], int(positions[i]))

    def feed_events(self, events: Iterable[Event]) -> None:
        """Already decoded events, in consumption order (their index is both sequence and position)."""
        for n, event in enumerate(events, start=self.counts.records):
            self.counts.records += 1
            if isinstance(event, self.used):
                self.apply(event, n, n)
            else:
                self.counts.ignored[event.schema_name] += 1

    def apply(self, event: Event, offset: int, position: int) -> None:
        """One event a group reads: update the window state; a scored event also records its model input."""
        self.counts.by_type[event.schema_name] += 1
        if isinstance(event, self.scored_type):
            self._score(event, offset, position)
        else:
            self._context(event, offset)

    def _context(self, event: Any, offset: int) -> None:
        ts = event.event_time_ms
        entity = getattr(event, self.decision.entity_key)
        for i in self.other[type(event)]:
            state = self.states[i]
            if state.apply(entity, ts, offset, tuple(getattr(event, c) for c in state.columns)):
                self.latest_rows[i][entity] = state.row(entity).values
            else:
                self.counts.late += 1

    def _score(self, event: Any, offset: int, position: int) -> None:
        ts = event.event_time_ms
        entity = getattr(event, self.decision.entity_key)
        features: dict[str, Any] = {}
        for i in self.own:
            state = self.states[i]
            if not state.apply(entity, ts, offset, tuple(getattr(event, c) for c in state.columns)):
                self.counts.late += 1
            features.update(state.row(entity).values)  # the scored event's own row: never beyond the TTL
        for ids in self.other.values():
            for i in ids:
                newest = self.states[i].newest.get(entity)
                if newest is not None and newest + self.ttl_ms[i] >= ts:
                    features.update(self.latest_rows[i][entity])
        s, d = self.scored, self.decision
        s.position.append(position)
        s.event_ms.append(ts)
        s.id.append(str(getattr(event, d.id_field)))
        s.entity.append(entity)
        if d.label is not None:
            s.label.append(bool(getattr(event, d.label)))
        s.rows.append(model_row(features, d.input_values(event), self.columns))


def schema_headers(batch: pa.RecordBatch) -> list[str | None]:
    """Each record's ``livectx-schema`` header value (None when it has none), without a per-row dict."""
    import pyarrow.compute as pc

    headers = batch.column("headers")
    out: list[str | None] = [None] * batch.num_rows
    if headers.null_count == len(headers):
        return out
    flat = pc.list_flatten(headers)
    parents = pc.list_parent_indices(headers)
    mask = pc.equal(flat.field("key"), SCHEMA_HEADER)
    rows = pc.filter(parents, mask).to_pylist()
    names = pc.filter(flat.field("value"), mask).to_pylist()
    for row, name in zip(rows, names, strict=True):
        out[row] = None if name is None else name.decode("utf-8", "replace")
    return out
