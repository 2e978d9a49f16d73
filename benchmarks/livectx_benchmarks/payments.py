"""The live feeders' payments, encoded without the model in the loop.

``bench features``, ``bench quota``, ``bench soak`` and the live attack story send thousands of payments a
second from a feeder process on the same two cores as the broker, Redis and the engine under test. Built
through the example's pydantic model and dumped by it, a payment cost ~50-100 us of feeder CPU (a quarter
to a half of a core at 5,000/s, taken from the engine); formatted here it costs a few. The bytes are those
the model's JSON decodes to: ``tests/unit/test_bench_payments.py`` checks every field against the model.
"""

from __future__ import annotations

import time

from livectx import serde
from livectx_benchmarks import example
from livectx_benchmarks.example import TRANSACTIONS

#: The feeder's header with the record's creation time (microseconds since the epoch): the start of its
#: first freshness stage (:mod:`livectx_ingest.streaming.stages`).
CREATED_HEADER = "livectx-bench-created-us"
_JSON = (
    '{{"event_time":"{time}.{micros:06d}Z","txn_id":"{user}-{n}","user_id":"{user}","card_id":"{user}-c",'
    '"merchant_id":"m{merchant}","amount":{amount!r},"currency":"EUR","ip":"10.0.{ip}.1","country":"DE",'
    '"is_fraud":false}}'
)
_schema_header: tuple[str, bytes] | None = None


def payment(user: str, n: int, created_us: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """``(key, value, headers)`` of payment ``n`` of ``user``, made at ``created_us`` (its event time)."""
    global _schema_header
    if _schema_header is None:
        _schema_header = (serde.SCHEMA_HEADER, serde.schema_id(example.model(TRANSACTIONS)).encode())
    seconds, micros = divmod(created_us, 1_000_000)
    value = _JSON.format(
        time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)), micros=micros, user=user, n=n,
        merchant=n % 50, amount=float(n % 200), ip=n % 7,
    )  # fmt: skip
    return user.encode(), value.encode(), [_schema_header, (CREATED_HEADER, b"%d" % created_us)]


def now_us() -> int:
    return time.time_ns() // 1000
