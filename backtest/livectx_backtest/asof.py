"""Feature values as of each payment, recomputed from replayed records with the streaming engine's own code.

Every decoded event goes through :class:`livectx.features.incremental.GroupState` (the window state the
engine keeps), in replay order; right after a payment is applied, ``row(user)`` of each group is exactly
the online row the live fraud agent would have read for that payment. Two economies keep the semantics:

- rows are read only for payments (the scored events), and a login group's row only after a login (it
  cannot change in between);
- each group keeps only the features some model version reads (every feature's partial aggregate is
  independent of the others, so the kept values are bit-identical to the full group's).

A group whose entity's newest event is older than the group's TTL before the payment reads as missing,
as Feast (and :mod:`livectx.features.pit_sql`) serve it. The model input is built with the fraud agent's
own :func:`~livectx_agents.example_fraud.model_row`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livectx_agents.example_fraud import model_row

from livectx import serde
from livectx.errors import SchemaError
from livectx.events import Event
from livectx.features.incremental import GroupState
from livectx.features.spec import FeatureGroup

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: The example repo's sources a fraud backtest reads; any other decoded type is counted as ignored.
PAYMENT_SOURCE, LOGIN_SOURCE = "transaction", "login"
SCHEMA_HEADER = serde.SCHEMA_HEADER


def model_groups(service: str, columns: Sequence[str]) -> list[FeatureGroup]:
    """The service's groups, each reduced to the features in ``columns`` (groups with none are left out)."""
    from livectx.repo import current_repo

    wanted = set(columns)
    groups = []
    for group in current_repo().service_groups(service):
        kept = tuple(f for f in group.features if f.name in wanted)
        if kept:
            groups.append(dataclasses.replace(group, features=kept))
    return groups


@dataclass
class Payments:
    """The scored events, columnar, in replay order: identity, label and the model input matrix."""

    columns: tuple[str, ...]
    position: list[int] = field(default_factory=list)  # index in the replayed stream
    event_ms: list[int] = field(default_factory=list)
    txn_id: list[str] = field(default_factory=list)
    user_id: list[str] = field(default_factory=list)
    is_fraud: list[bool] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)  # model_row(features, amount, columns)

    def __len__(self) -> int:
        return len(self.position)

    def arrays(self) -> dict[str, np.ndarray]:
        import numpy as np

        return {
            "position": np.asarray(self.position, dtype=np.int64),
            "event_ms": np.asarray(self.event_ms, dtype=np.int64),
            "txn_id": np.asarray(self.txn_id, dtype=object),
            "user_id": np.asarray(self.user_id, dtype=object),
            "is_fraud": np.asarray(self.is_fraud, dtype=bool),
            "rows": np.asarray(self.rows, dtype=np.float64).reshape(len(self.position), len(self.columns) + 1),
        }


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


class AsOfFeatures:
    """Feeds replayed record batches through the engine's window state; collects each payment's model input."""

    def __init__(self, service: str, columns: Sequence[str]) -> None:
        from livectx.repo import current_repo

        repo = current_repo()
        self.columns = tuple(columns)
        self._payment_type, self._login_type = repo.model(PAYMENT_SOURCE), repo.model(LOGIN_SOURCE)
        self._used = (self._payment_type, self._login_type)
        self._repo = repo
        groups = model_groups(service, self.columns)
        self.states = [GroupState(g) for g in groups]
        self._ttl = [int(g.ttl.total_seconds() * 1000) for g in groups]
        self._txn = [i for i, g in enumerate(groups) if g.event_type is self._payment_type]
        self._login = [i for i, g in enumerate(groups) if g.event_type is self._login_type]
        #: per login-group index: user -> its row's values, refreshed after each of the user's logins
        self._login_rows: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in self._login}
        self.payments = Payments(self.columns)
        self.counts = ReplayCounts()

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        """One replay batch (the archive's columns); ``first_position`` numbers its first record."""
        values = batch.column("value").to_pylist()
        offsets = batch.column("offset").to_pylist()
        schemas = schema_headers(batch)
        positions = batch.column("position").to_pylist() if "position" in batch.schema.names else None
        counts = self.counts
        counts.records += len(values)
        for i, (value, schema) in enumerate(zip(values, schemas, strict=True)):
            if schema is None:
                counts.bad["no livectx-schema header"] += 1
                continue
            event_type = self._repo.event_type(schema.rsplit(".v", 1)[0])
            if event_type is None:
                counts.bad[f"unknown schema {schema}"] += 1
                continue
            if event_type not in self._used:
                counts.ignored[event_type.schema_name] += 1
                continue
            try:
                event = serde.decode(event_type, value)
            except SchemaError as exc:
                counts.bad[str(exc)[:120]] += 1
                continue
            self.apply(event, offsets[i], positions[i] if positions is not None else first_position + i)

    def feed_events(self, events: Iterable[Event]) -> None:
        """Already decoded events, in consumption order (their index is both sequence and position)."""
        for n, event in enumerate(events, start=self.counts.records):
            self.counts.records += 1
            if isinstance(event, self._used):
                self.apply(event, n, n)
            else:
                self.counts.ignored[event.schema_name] += 1

    def apply(self, event: Event, offset: int, position: int) -> None:
        """One payment or login: update the window state; a payment also records its model input."""
        self.counts.by_type[event.schema_name] += 1
        if isinstance(event, self._payment_type):
            self._payment(event, offset, position)
        else:
            self._login_event(event, offset)  # type: ignore[arg-type]

    def _login_event(self, login: Any, offset: int) -> None:
        ts = login.event_time_ms
        for i in self._login:
            state = self.states[i]
            if state.apply(login.user_id, ts, offset, tuple(getattr(login, c) for c in state.columns)):
                self._login_rows[i][login.user_id] = state.row(login.user_id).values
            else:
                self.counts.late += 1

    def _payment(self, txn: Any, offset: int, position: int) -> None:
        ts = txn.event_time_ms
        user = txn.user_id
        features: dict[str, Any] = {}
        for i in self._txn:
            state = self.states[i]
            if not state.apply(user, ts, offset, tuple(getattr(txn, c) for c in state.columns)):
                self.counts.late += 1
            features.update(state.row(user).values)  # the payment's own row: never beyond the TTL
        for i in self._login:
            newest = self.states[i].newest.get(user)
            if newest is not None and newest + self._ttl[i] >= ts:
                features.update(self._login_rows[i][user])
        p = self.payments
        p.position.append(position)
        p.event_ms.append(ts)
        p.txn_id.append(txn.txn_id)
        p.user_id.append(user)
        p.is_fraud.append(txn.is_fraud)
        p.rows.append(model_row(features, txn.amount, self.columns))


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
