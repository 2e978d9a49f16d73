"""Records that would blind a user's features go to the dead-letter topic, and the features keep moving.

Measured before this check: one payment with an ``Infinity`` amount made that user's max ``inf`` and sum and
mean ``NaN`` for the rest of the hour; one payment dated 2099 froze the user's windows (every later real
payment was dropped as late). Here both kinds (and ``NaN``, ``1e400``, a date decades before the record's
Kafka timestamp) sit between real payments of one user, on the per-record and on the columnar path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from livectx import dead_letter
from tests.example import Transaction

from .engine_helpers import TXN_GROUPS, online_mismatches, payment, produce, run_worker_to_completion, worker_command
from .kafka_helpers import create_topic, read_all


def _raw(user: str, n: int, amount: str, at: datetime) -> bytes:
    """A payment as another client would write it, with a literal ``amount`` token."""
    body = payment(user, at, n).model_dump(mode="json")
    return json.dumps(body).replace('"amount": 10.0', f'"amount": {amount}').encode()


@pytest.mark.parametrize("path", ["per-record", "columnar"])
def test_non_finite_and_implausible_records_are_dead_lettered_and_features_keep_updating(
    settings, feature_store, unique: str, tmp_path, path: str
) -> None:  # type: ignore[no-untyped-def]
    topic = create_topic(settings, f"test.{unique}.txn")
    dlq = create_topic(settings, f"test.{unique}.dlq")
    late = create_topic(settings, f"test.{unique}.late")
    user = f"{unique}-u"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    before = [payment(user, base + timedelta(seconds=10 * k), k, amount=5.0 + k) for k in range(5)]
    after = [payment(user, base + timedelta(minutes=2, seconds=10 * k), 100 + k, amount=20.0 + k) for k in range(5)]
    poison = [
        _raw(user, 50, "Infinity", base + timedelta(minutes=1)),
        _raw(user, 51, "NaN", base + timedelta(minutes=1)),
        _raw(user, 52, "1e400", base + timedelta(minutes=1)),
        payment(user, datetime(2099, 1, 1, tzinfo=UTC), 53),
        payment(user, datetime(1990, 1, 1, tzinfo=UTC), 54),
    ]
    produce(settings, topic, [*before, *poison, *after], key=user.encode())
    command = worker_command(f"test-{unique}", topic, dlq, late)
    if path == "columnar":
        command += ["--no-offline", "--columnar-min", "1"]
    run_worker_to_completion(command, tmp_path / "worker.log")

    letters = read_all(settings, dlq, expected=len(poison))
    reasons = sorted(dict(m.headers())[dead_letter.REASON].decode() for m in letters)
    assert len(reasons) == len(poison), reasons
    assert sum("finite number" in r for r in reasons) == 3, reasons
    assert any("implausible event time" in r and "ahead" in r for r in reasons), reasons
    assert any("implausible event time" in r and "behind" in r for r in reasons), reasons
    valid: list[Transaction] = [*before, *after]
    assert online_mismatches(feature_store, TXN_GROUPS, valid) == []
    rows = feature_store.get_online_features(
        features=["user_txn_5m:txn_count_5m", "user_txn_1h:txn_amount_sum_1h"], entity_rows=[{"user_id": user}]
    ).to_dict()
    assert rows["txn_amount_sum_1h"] == [sum(p.amount for p in valid)]  # finite, and counts the later payments
