from datetime import UTC, datetime, timedelta

from livectx_ingest.user_totals import Totals, fold, to_frame

from livectx.events import Transaction

T0 = datetime(2026, 3, 10, tzinfo=UTC)


def _txn(user: str, amount: float, seconds: int) -> Transaction:
    return Transaction(
        event_time=T0 + timedelta(seconds=seconds),
        txn_id=f"{user}-{seconds}",
        user_id=user,
        card_id="c",
        merchant_id="m",
        amount=amount,
        currency="EUR",
        ip="1.1.1.1",
        country="DE",
    )


def test_fold_adds_to_previous_totals_and_keeps_newest_event_time() -> None:
    previous = {"a": Totals(2, 10.0, T0)}
    result = fold(previous, [_txn("a", 1.25, 5), _txn("b", 3.0, 6), _txn("a", 0.5, 7)])
    assert result == {"a": Totals(4, 11.75, T0 + timedelta(seconds=7)), "b": Totals(1, 3.0, T0 + timedelta(seconds=6))}
    assert previous == {"a": Totals(2, 10.0, T0)}  # pure


def test_late_event_still_counts_and_moves_row_time_strictly_forward() -> None:
    # Feast's Redis store ignores rows whose timestamp is not newer than the stored one.
    previous = {"a": Totals(1, 1.0, T0 + timedelta(seconds=10))}
    result = fold(previous, [_txn("a", 2.0, 3)])
    assert result["a"].count == 2
    assert result["a"].event_time > T0 + timedelta(seconds=10)


def test_frame_has_feast_schema_types() -> None:
    frame = to_frame({"a": Totals(3, 1.5, T0)})
    assert list(frame.columns) == ["user_id", "event_timestamp", "txn_count_total", "txn_amount_total"]
    assert str(frame["txn_count_total"].dtype) == "int64"
    assert str(frame["event_timestamp"].dt.tz) == "UTC"
