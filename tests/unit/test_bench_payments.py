"""The live feeders' payments (:mod:`livectx_benchmarks.payments`) are formatted, not dumped by the model:
each must decode to the very payment the example's model would have sent, key and schema header included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from livectx_benchmarks import example
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.payments import CREATED_HEADER, payment

from livectx import serde


@pytest.mark.parametrize(
    ("user", "n", "created_us"),
    [
        ("t-u0", 0, 1_786_000_000_000_000),
        ("t-u7", 7, 1_786_000_000_123_456),
        ("t-warm", 1_234_567, 1_786_000_001_000_001),
    ],
)
def test_a_formatted_payment_is_the_model_s_payment(user: str, n: int, created_us: int) -> None:
    model = example.model(TRANSACTIONS)
    created = datetime.fromtimestamp(created_us / 1_000_000, UTC).replace(microsecond=created_us % 1_000_000)
    expected = model(
        event_time=created, txn_id=f"{user}-{n}", user_id=user, card_id=f"{user}-c", merchant_id=f"m{n % 50}",
        amount=float(n % 200), currency="EUR", ip=f"10.0.{n % 7}.1", country="DE",
    )  # fmt: skip
    key, value, headers = payment(user, n, created_us)
    want_key, _value, want_headers = serde.encode(expected)
    assert serde.decode(model, value) == expected
    assert key == want_key
    assert headers == [*want_headers, (CREATED_HEADER, str(created_us).encode())]
