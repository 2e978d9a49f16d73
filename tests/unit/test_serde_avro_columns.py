"""The Avro batch decoder accepts only what the per-record fastavro + pydantic path accepts, with the same
values: on a corpus of tricky records, on random corruptions of good ones, and on framed records of an
older writer schema resolved to the declared one."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from livectx import serde, wire
from livectx.errors import SchemaError
from livectx.repo.schema import avro_twin
from livectx.serde_avro_columns import _varint
from livectx.serde_columns import EVENT_TIME_MS, column_decoder
from livectx.wire import SchemaCache
from tests.example import Login, Transaction

AvroTransaction = avro_twin(Transaction)
WHEN = datetime(2026, 3, 10, 0, 0, 0, 6000, tzinfo=UTC)


def _event(**changes: Any) -> Any:
    fields = dict(
        event_time=WHEN, txn_id="t1", user_id="u1", card_id="c1", merchant_id="m1",
        amount=93.54, currency="EUR", ip="1.2.3.4", country="NL", is_fraud=False,
    )  # fmt: skip
    fields.update(changes)
    return AvroTransaction.model_construct(**fields)  # unchecked: the corpus holds values the model refuses


def _encode(**changes: Any) -> bytes:
    return serde.encode(_event(**changes))[1]


GOOD = _encode()


def _string_at(record: bytes, text: bytes) -> int:
    """Where the string ``text`` (its length varint, then its bytes) starts in ``record``."""
    return record.index(_varint(len(text)) + text)


TRICKY: list[bytes | None] = [
    None,
    b"",
    GOOD[:-1],  # short by one byte: a Rust panic inside polars, caught
    GOOD[:3],
    GOOD + b"\x00",  # a byte after the record
    GOOD + GOOD,  # two records in one
    _encode(amount=float("nan")),
    _encode(amount=float("inf")),
    _encode(amount=-0.01),
    _encode(amount=-0.0),
    _encode(currency="EU"),
    _encode(currency="ÉÉÉ"),
    _encode(user_id=""),
    _encode(user_id="ü" * 70),  # a two-byte length varint
    _encode(event_time=datetime(1970, 1, 1, tzinfo=UTC)),
    _encode(event_time=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    _encode(event_time=datetime(1, 1, 1, tzinfo=UTC)),
    _encode(event_time=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    _encode(is_fraud=True),
    GOOD[:-1] + b"\x02",  # a boolean byte that is neither 0 nor 1
    GOOD[:-1] + b"\xff",
    GOOD.replace(b"\x02u1", b"\x02\xff\xfe"),  # invalid UTF-8
    GOOD.replace(b"\x06EUR", b"\x86\x00EUR"),  # an over-long length varint (valid bytes, not canonical)
    GOOD.replace(b"\x02u1", b"\x04u1"),  # a length that runs into the next field
    b"\x00" + GOOD[1:],
]


def _per_record(event_type: Any, values: list[bytes | None], schemas: Any = None) -> list[Any] | None:
    try:
        return [serde.decode(event_type, v, schemas) for v in values]
    except SchemaError:
        return None


def _assert_same(values: list[bytes | None], event_type: Any = AvroTransaction, schemas: Any = None) -> bool:
    """Decode with both paths; if the batch path accepts, the per-record path must accept, equal values."""
    table = column_decoder(event_type).decode(values, schemas)  # type: ignore[union-attr]
    if table is None:
        return False
    events = _per_record(event_type, values, schemas)
    assert events is not None, f"batch path accepted what the per-record path rejects: {values!r}"
    for event, row in zip(events, table.to_pylist(), strict=True):
        expected = event.model_dump()
        expected.pop("event_time")
        expected[EVENT_TIME_MS] = event.event_time_ms
        assert row == expected
        for name, value in expected.items():  # same types too (-0.0 vs 0)
            assert type(row[name]) is type(value) and repr(row[name]) == repr(value), name
    return True


@pytest.mark.parametrize("record", TRICKY, ids=[repr(r)[:60] for r in TRICKY])
def test_a_tricky_record_is_rejected_or_decoded_exactly_as_the_per_record_path_would(record: bytes | None) -> None:
    _assert_same([GOOD, record, GOOD])


def test_the_fast_path_is_taken_for_ordinary_batches_and_some_tricky_values() -> None:
    assert _assert_same([GOOD] * 3)
    assert _assert_same([_encode(amount=-0.0), _encode(user_id="ü" * 70), _encode(is_fraud=True)])
    assert _assert_same([_encode(event_time=datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))])
    assert not _assert_same([_encode(event_time=datetime(9999, 1, 1, tzinfo=UTC))])  # beyond float64-exact µs
    assert not _assert_same([GOOD, GOOD[:-1] + b"\x02"])  # fastavro reads it as true, polars as false
    assert not _assert_same([GOOD, GOOD + b"\x00"])
    assert not _assert_same([])


def test_random_corruptions_of_good_records_never_decode_differently() -> None:
    rng = random.Random(11)
    records = [_encode(amount=rng.random() * 1000, user_id=f"u{rng.randrange(10**6)}") for _ in range(40)]
    accepted = 0
    for _ in range(400):
        record = bytearray(rng.choice(records))
        match rng.randrange(3):
            case 0:
                record[rng.randrange(len(record))] = rng.randrange(256)
            case 1:
                del record[rng.randrange(len(record))]
            case 2:
                record.insert(rng.randrange(len(record) + 1), rng.randrange(256))
        accepted += _assert_same([bytes(record)])
    assert 0 < accepted < 400  # both outcomes were exercised


def test_event_times_match_event_time_ms_for_many_instants() -> None:
    rng = random.Random(3)
    instants = [
        datetime(1960, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(3 * 10**15)) for _ in range(3000)
    ]
    assert _assert_same([_encode(event_time=instant) for instant in instants])


def _registry(*schemas: dict[str, Any]) -> SchemaCache:
    """A schema cache over an in-memory lookup (the registry itself is exercised in the integration tests)."""
    by_id = {i + 1: SimpleNamespace(schema_str=json.dumps(s), schema_type="AVRO") for i, s in enumerate(schemas)}

    class Lookup:
        def get_schema(self, schema_id: int) -> Any:
            if schema_id not in by_id:
                raise SchemaError(f"schema id {schema_id} not found")
            return by_id[schema_id]

    return SchemaCache(Lookup())  # type: ignore[arg-type]


def test_framed_records_of_an_older_writer_resolve_to_the_declared_schema() -> None:
    declared = AvroTransaction.avro_schema
    assert declared is not None
    older = {**declared, "fields": [f for f in declared["fields"] if f["name"] != "is_fraud"]}  # has a default
    older["fields"] = [*older["fields"], {"name": "legacy", "type": "int"}]  # the reader drops it
    older["fields"] = [{**f, "type": "int"} if f["name"] == "amount" else f for f in older["fields"]]
    import fastavro

    def old_record(amount: int, legacy: int) -> bytes:
        import io

        out = io.BytesIO()
        record = {**_event().model_dump(by_alias=True), "amount": amount, "legacy": legacy}
        fastavro.schemaless_writer(out, fastavro.parse_schema(older), record)
        return wire.frame(1, out.getvalue())

    schemas = _registry(older, declared)
    mixed = [old_record(5, 1), wire.frame(2, GOOD), GOOD, old_record(300, -7)]
    assert _assert_same(mixed, schemas=schemas)
    table = column_decoder(AvroTransaction).decode(mixed, schemas)  # type: ignore[union-attr]
    assert table is not None
    assert table.column("amount").to_pylist() == [5.0, 93.54, 93.54, 300.0]
    assert table.column("is_fraud").to_pylist() == [False, False, False, False]
    assert not _assert_same([wire.frame(9, GOOD)], schemas=schemas)  # an unknown id: per record, dead letter
    assert not _assert_same([wire.frame(1, GOOD)])  # no cache: per record


def test_decoders_exist_for_flat_avro_sources_only() -> None:
    assert column_decoder(AvroTransaction) is not None
    assert column_decoder(avro_twin(Login)) is not None
