"""The first end-to-end slice: per-user running transaction count and amount, pushed to Feast.

Replaced by the stateful windowed engine later; the plumbing (batch worker, dead letters, Feast sink)
stays. State is the online store itself: a user's totals are read back through Feast the first time the
worker sees them, so a restarted worker continues from what agents already read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from livectx.events import Event, Transaction

if TYPE_CHECKING:
    import pandas as pd
    from confluent_kafka import Message

FEATURE_VIEW = "user_txn_totals"
PUSH_SOURCE = "user_txn_totals_push"
FEATURES = ("txn_count_total", "txn_amount_total")
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Totals:
    count: int
    amount: float
    event_time: datetime | None


def fold(previous: Mapping[str, Totals], transactions: Iterable[Transaction]) -> dict[str, Totals]:
    """New totals for every user touched by ``transactions``. Pure: the same input gives the same output."""
    updated: dict[str, Totals] = {}
    for txn in transactions:
        current = updated.get(txn.user_id) or previous.get(txn.user_id) or Totals(0, 0.0, None)
        newest = txn.event_time
        if current.event_time is not None and newest <= current.event_time:
            # Feast's Redis store ignores a row whose timestamp is not newer than the stored one; a late
            # or same-millisecond event must still update the totals, so nudge the row time forward.
            newest = current.event_time + _TICK
        updated[txn.user_id] = Totals(current.count + 1, round(current.amount + txn.amount, 2), newest)
    return updated


def to_frame(totals: Mapping[str, Totals]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "user_id": list(totals),
            "event_timestamp": pd.to_datetime([t.event_time for t in totals.values()], utc=True),
            "txn_count_total": pd.Series([t.count for t in totals.values()], dtype="int64"),
            "txn_amount_total": pd.Series([t.amount for t in totals.values()], dtype="float64"),
        }
    )


class UserTotalsProcessor:
    """Batch callback for :class:`~livectx_ingest.batch_worker.BatchWorker`."""

    def __init__(
        self, read_online: Callable[[list[str]], dict[str, Totals]], write_online: Callable[[pd.DataFrame], None]
    ) -> None:
        self._read_online = read_online
        self._write_online = write_online
        self._state: dict[str, Totals] = {}

    def __call__(self, batch: Sequence[tuple[Message, Event]]) -> None:
        transactions = [event for _, event in batch if isinstance(event, Transaction)]
        unseen = sorted({t.user_id for t in transactions} - self._state.keys())
        if unseen:
            self._state.update(self._read_online(unseen))
        updated = fold(self._state, transactions)
        if updated:
            self._write_online(to_frame(updated))  # raises on failure: the batch's offsets stay uncommitted
            self._state.update(updated)


def feast_reader(store: object) -> Callable[[list[str]], dict[str, Totals]]:
    """Read current totals for users through Feast (missing users read as zero)."""

    def read(user_ids: list[str]) -> dict[str, Totals]:
        result = store.get_online_features(  # type: ignore[attr-defined]
            features=[f"{FEATURE_VIEW}:{name}" for name in FEATURES],
            entity_rows=[{"user_id": u} for u in user_ids],
        ).to_dict(include_event_timestamps=True)
        return {
            user: Totals(int(count), float(amount), datetime.fromtimestamp(seconds, UTC))
            for user, count, amount, seconds in zip(
                result["user_id"],
                result["txn_count_total"],
                result["txn_amount_total"],
                result["txn_count_total__ts"],
                strict=True,
            )
            if count is not None
        }

    return read
