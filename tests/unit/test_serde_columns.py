"""The batch decoder accepts only what the per-record pydantic path accepts, with the same values."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from livectx import serde
from livectx.errors import SchemaError
from livectx.serde_columns import EVENT_TIME_MS, column_decoder
from tests.example import Click, Login, SupportTicket, Transaction

GOOD = (
    b'{"event_time":"2026-03-10T00:00:00.006000Z","txn_id":"t1","user_id":"u1","card_id":"c1",'
    b'"merchant_id":"m1","amount":93.54,"currency":"EUR","ip":"1.2.3.4","country":"NL","is_fraud":false}'
)


def _with(**changes: str) -> bytes:
    """GOOD with raw JSON text substituted for some fields' values."""
    text = GOOD.decode()
    for name, raw in changes.items():
        start = text.index(f'"{name}":') + len(name) + 3
        end = start
        depth, in_string = 0, False
        while True:  # the end of the old value: a comma or brace at depth 0 outside a string
            ch = text[end]
            if in_string:
                in_string = not (ch == '"' and text[end - 1] != "\\")
            elif ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}" and depth:
                depth -= 1
            elif ch in ",}" and not depth:
                break
            end += 1
        text = text[:start] + raw + text[end:]
    return text.encode()


TRICKY: list[bytes | None] = [
    None,
    b"",
    b" ",
    b"[1]",
    b'"x"',
    b"not json",
    GOOD + GOOD,  # two objects in one record
    GOOD.replace(b",", b", "),  # whitespace between tokens (valid, but not the compact form)
    GOOD.replace(b'"is_fraud":false', b'"is_fraud":false,"extra":1'),
    GOOD.replace(b',"is_fraud":false', b""),  # a defaulted field left out
    GOOD.replace(b'"txn_id":"t1"', b'"txn_id":"t1","txn_id":"t2"'),  # duplicate key
    GOOD.replace(b'"user_id":"u1"', b'"user_id":"u\tx"'),  # raw control byte in a string
    GOOD.replace(b'"user_id":"u1"', b'"user_id":"\xff"'),
    GOOD.replace(b'"user_id":"u1"', b'"user_id":"\\ud800"'),
    GOOD.replace(b"\n", b"") + b"\n",
    _with(user_id="null"),
    _with(user_id="7"),
    _with(user_id='["u"]'),
    _with(amount='"12.5"'),
    _with(amount="true"),
    _with(amount="-0.01"),
    _with(amount="NaN"),
    _with(amount="1e400"),
    _with(amount="-0.0"),
    _with(amount="12345678901234567890123"),
    _with(amount="7"),
    _with(is_fraud="1"),
    _with(is_fraud='"true"'),
    _with(currency='"EU"'),
    _with(currency='"EURO"'),
    _with(currency='"\\u00e9\\u00e9\\u00e9"'),
    _with(country='"D"'),
    _with(event_time='"2026-03-10T00:00:00"'),  # naive
    _with(event_time='"2026-03-10 00:00:00Z"'),
    _with(event_time='"2026-03-10T00:00:00z"'),
    _with(event_time='"2026-02-30T00:00:00Z"'),
    _with(event_time='"2026-03-10T24:00:00Z"'),
    _with(event_time='"2026-03-10T00:00:60Z"'),
    _with(event_time='"2026-03-10T00:00:00.1234567Z"'),
    _with(event_time='"2026-03-10T00:00:00+24:00"'),
    _with(event_time='"2026-03-10T00:00:00.5+05:30"'),
    _with(event_time='"2026-03-10T00:00:00-00:00"'),
    _with(event_time="1773100800"),
    _with(event_time='"0999-03-10T00:00:00Z"'),
]


def _pydantic(values: list[bytes | None]) -> list[Transaction] | None:
    try:
        return [serde.decode(Transaction, v) for v in values]  # type: ignore[misc]
    except SchemaError:
        return None


def _assert_same(values: list[bytes | None]) -> bool:
    """Decode with both paths; if the batch path accepts, pydantic must accept with equal values."""
    table = column_decoder(Transaction).decode(values)  # type: ignore[union-attr]
    if table is None:
        return False
    events = _pydantic(values)
    assert events is not None, f"batch path accepted what pydantic rejects: {values!r}"
    rows = table.to_pylist()
    for event, row in zip(events, rows, strict=True):
        expected = event.model_dump()
        expected.pop("event_time")
        expected[EVENT_TIME_MS] = event.event_time_ms
        assert row == expected
        for name, value in expected.items():  # same types too (-0.0 vs 0, 7 vs 7.0)
            assert type(row[name]) is type(value) and repr(row[name]) == repr(value), name
    return True


@pytest.mark.parametrize("record", TRICKY, ids=[repr(r)[:60] for r in TRICKY])
def test_a_tricky_record_is_rejected_or_decoded_exactly_as_pydantic_would(record: bytes | None) -> None:
    _assert_same([GOOD, record, GOOD])


def test_the_fast_path_is_taken_for_ordinary_batches_and_some_tricky_values() -> None:
    assert _assert_same([GOOD] * 3)
    assert _assert_same([_with(amount="-0.0"), _with(amount="7"), _with(event_time='"2026-03-10T00:00:00.5+05:30"')])
    assert not _assert_same([GOOD, None])
    assert not _assert_same([])


def test_event_times_match_event_time_ms_for_many_instants_and_offsets() -> None:
    rng = random.Random(3)
    values = []
    for _ in range(3_000):
        offset = timezone(timedelta(minutes=rng.randrange(-23 * 60, 23 * 60 + 1)))
        instant = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**15))
        event = Transaction(
            event_time=instant.astimezone(offset),
            txn_id="t",
            user_id="u",
            card_id="c",
            merchant_id="m",
            amount=rng.random() * 1000,
            currency="EUR",
            ip="i",
            country="DE",
        )
        values.append(serde.encode(event)[1])
    assert _assert_same(values)


def test_decoders_exist_for_the_feature_sources_only() -> None:
    assert column_decoder(Transaction) is not None
    assert column_decoder(Login) is not None
    assert column_decoder(Click) is not None
    assert column_decoder(SupportTicket) is None  # a Literal field: outside what the batch checks cover
