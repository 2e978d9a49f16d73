"""The Confluent wire format: header parsing, the writer-schema cache, per-record format detection (plain
JSON / plain Avro / framed), Avro schema resolution to the declared reader, the columnar path over framed
records, the registry pause's backoff, and producing through the registry (confluent-kafka's mock client)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from feast.data_format import AvroFormat, JsonFormat

from livectx import serde, wire
from livectx.errors import RegistryUnavailable, SchemaError
from livectx.repo.compile import RepoError, compile_source
from livectx.repo.declare import stream_source
from livectx.repo.schema import SchemaDeclarationError
from livectx.schemas.derive import declared_schema
from livectx.schemas.serializers import RegistryEncoder, SchemaNotRegistered
from livectx.serde_columns import column_decoder

DDL = "payment_id STRING, user_id STRING, amount DOUBLE, event_time TIMESTAMP"
V1 = {
    "type": "record",
    "name": "Payment",
    "namespace": "shop",
    "fields": [
        {"name": "payment_id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "channel", "type": "string", "default": "web"}]}


def _spec(schema: Any, **kwargs: Any) -> Any:
    declared = stream_source(
        name="payment", topic="shop.payments", schema=schema, timestamp_field="event_time", key="payment_id", **kwargs
    )
    return compile_source(declared, "payment_id")


class FakeRegistry:
    """``get_schema`` over a dict; ``down`` makes it fail like a registry that does not answer."""

    def __init__(self, schemas: dict[int, tuple[str, str]]) -> None:
        self.schemas = schemas
        self.down = False
        self.calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.calls += 1
        if self.down:
            raise httpx.ConnectError("connection refused")
        if schema_id not in self.schemas:
            raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")
        schema_type, text = self.schemas[schema_id]
        return SimpleNamespace(schema_type=schema_type, schema_str=text)


def _avro(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


JSON_RECORD = b'{"payment_id":"p1","user_id":"u1","amount":12.5,"event_time":"2026-03-10T00:00:00Z"}'


# -- the header ---------------------------------------------------------------------------------------------


def test_the_header_is_the_magic_byte_and_a_big_endian_schema_id() -> None:
    value = wire.frame(258, b"payload")
    assert value[:5] == b"\x00\x00\x00\x01\x02"
    assert wire.framed(value) and wire.split(value) == (258, b"payload")
    assert not wire.framed(JSON_RECORD) and not wire.framed(b"\x00\x00") and not wire.framed(None)
    with pytest.raises(SchemaError, match="not the Confluent wire format: expected magic byte 0"):
        wire.split(b"\x00\x01")
    with pytest.raises(SchemaError, match="starting 7b22"):
        wire.split(b'{"a": 1}')


# -- the cache ----------------------------------------------------------------------------------------------


def test_the_cache_asks_the_registry_once_per_id() -> None:
    registry = FakeRegistry({7: ("JSON", "{}"), 8: ("AVRO", json.dumps(V1))})
    cache = wire.SchemaCache(registry)
    assert cache.get(7).schema_type == "JSON" and cache.get(7) is cache.get(7)
    assert cache.get(8).parsed["name"] == "shop.Payment"
    assert registry.calls == 2 and cache.requests == 2
    registry.down = True
    assert cache.get(8).schema_id == 8  # cached: a registry outage does not matter for known ids


def test_an_unknown_id_is_a_schema_error_remembered_for_a_while() -> None:
    now = [0.0]
    registry = FakeRegistry({})
    cache = wire.SchemaCache(registry, unknown_ttl_s=60, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(SchemaError, match="unknown schema id 99: the schema registry has no schema with this id"):
            cache.get(99)
    assert registry.calls == 1
    now[0] = 61.0
    registry.schemas[99] = ("JSON", "{}")
    assert cache.get(99).schema_type == "JSON" and registry.calls == 2


def test_a_registry_that_does_not_answer_is_never_cached() -> None:
    registry = FakeRegistry({7: ("JSON", "{}")})
    registry.down = True
    cache = wire.SchemaCache(registry, url="http://registry:8081")
    for _ in range(2):
        with pytest.raises(RegistryUnavailable, match=r"http://registry:8081 does not answer \(ConnectError\)"):
            cache.get(7)
    assert not issubclass(RegistryUnavailable, SchemaError)  # never a dead-letter reason
    registry.down = False
    assert cache.get(7).schema_type == "JSON" and registry.calls == 3


@pytest.mark.parametrize(("status", "match"), [(503, "answered 503"), (401, "refused the credentials")])
def test_registry_failures_and_refused_credentials_pause_rather_than_dead_letter(status: int, match: str) -> None:
    class Failing:
        def get_schema(self, _schema_id: int) -> Any:
            raise SchemaRegistryError(status, status * 100, "nope")

    with pytest.raises(RegistryUnavailable, match=match):
        wire.SchemaCache(Failing()).get(1)


# -- per-record detection -----------------------------------------------------------------------------------


def test_a_json_source_reads_plain_and_framed_records_alike() -> None:
    model = _spec(JsonFormat(DDL)).model
    cache = wire.SchemaCache(FakeRegistry({7: ("JSON", "{}"), 8: ("AVRO", json.dumps(V1))}))
    plain = serde.decode(model, JSON_RECORD, cache)
    assert serde.decode(model, wire.frame(7, JSON_RECORD), cache) == plain
    with pytest.raises(SchemaError, match="unknown schema id 9"):
        serde.decode(model, wire.frame(9, JSON_RECORD), cache)
    with pytest.raises(SchemaError, match="schema id 8 is a AVRO schema, but source payment is JSON"):
        serde.decode(model, wire.frame(8, JSON_RECORD), cache)
    with pytest.raises(SchemaError, match="amount: Input should be a valid number"):
        serde.decode(model, wire.frame(7, JSON_RECORD.replace(b"12.5", b'"12.5"')), cache)
    with pytest.raises(SchemaError, match="not the Confluent wire format"):
        serde.decode(model, b"\x00\x00", cache)


def test_a_framed_record_waits_for_the_registry_instead_of_failing() -> None:
    model = _spec(JsonFormat(DDL)).model
    registry = FakeRegistry({7: ("JSON", "{}")})
    registry.down = True
    cache = wire.SchemaCache(registry)
    serde.decode(model, JSON_RECORD, cache)  # a plain record never asks
    with pytest.raises(RegistryUnavailable):
        serde.decode(model, wire.frame(7, JSON_RECORD), cache)
    registry.down = False
    assert serde.decode(model, wire.frame(7, JSON_RECORD), cache).amount == 12.5


def test_an_older_avro_writer_is_resolved_to_the_declared_schema() -> None:
    model = _spec(AvroFormat(json.dumps(V2))).model
    cache = wire.SchemaCache(FakeRegistry({1: ("AVRO", json.dumps(V1)), 2: ("AVRO", json.dumps(V2))}))
    old = {"payment_id": "p1", "amount": 3.0, "event_time": 1_773_100_800_000}
    from_v1 = serde.decode(model, wire.frame(1, _avro(V1, old)), cache)
    assert from_v1.channel == "web" and from_v1.event_time_ms == 1_773_100_800_000  # the new field's default
    from_v2 = serde.decode(model, wire.frame(2, _avro(V2, {**old, "channel": "app"})), cache)
    assert from_v2.channel == "app"
    assert serde.decode(model, _avro(V2, {**old, "channel": "app"}), cache) == from_v2  # plain Avro still reads
    with pytest.raises(SchemaError, match=r"not Avro of payment.v1 \(written with schema id 1\)"):
        serde.decode(model, wire.frame(1, b"\x02p"), cache)


def test_plain_avro_starting_with_a_zero_byte_still_reads_during_a_migration() -> None:
    model = _spec(AvroFormat(json.dumps(V2))).model
    cache = wire.SchemaCache(FakeRegistry({}))
    record = {"payment_id": "", "amount": 3.0, "event_time": 1_773_100_800_000, "channel": "app"}
    value = _avro(V2, record)
    assert value[0] == 0  # an empty string first: looks framed
    assert serde.decode(model, value, cache).channel == "app"


# -- the columnar path --------------------------------------------------------------------------------------


def _json_records(n: int) -> list[bytes]:
    return [
        json.dumps(
            {"payment_id": f"p{i}", "user_id": f"u{i % 7}", "amount": i + 0.5, "event_time": "2026-03-10T00:00:00Z"},
            separators=(",", ":") if i % 2 else (", ", ": "),  # what JSONSerializer writes, and compact
        ).encode()
        for i in range(n)
    ]


def test_the_columnar_path_reads_framed_json_and_mixed_batches() -> None:
    model = _spec(JsonFormat(DDL)).model
    decoder = column_decoder(model)
    assert decoder is not None
    cache = wire.SchemaCache(FakeRegistry({10: ("JSON", "{}"), 2560: ("JSON", "{}"), 8: ("AVRO", json.dumps(V1))}))
    records = _json_records(50)
    plain = decoder.decode(records, cache)
    assert plain is not None and plain.num_rows == 50
    # ids whose bytes include a newline and "{" must not confuse the record split
    framed = [wire.frame(10 if i % 3 else 2560, r) for i, r in enumerate(records)]
    assert decoder.decode(framed, cache) == plain
    mixed = [f if i % 2 else r for i, (f, r) in enumerate(zip(framed, records, strict=True))]
    assert decoder.decode(mixed, cache) == plain
    assert decoder.decode(framed, None) is None  # no cache: the per-record path decides
    assert decoder.decode([*framed[:-1], wire.frame(99, records[-1])], cache) is None  # unknown id
    assert decoder.decode([*framed[:-1], wire.frame(8, records[-1])], cache) is None  # an Avro id


def test_the_columnar_path_leaves_a_registry_outage_to_the_per_record_path() -> None:
    model = _spec(JsonFormat(DDL)).model
    registry = FakeRegistry({10: ("JSON", "{}")})
    registry.down = True
    decoder = column_decoder(model)
    assert decoder is not None
    assert decoder.decode([wire.frame(10, r) for r in _json_records(5)], wire.SchemaCache(registry)) is None


# -- the pause ----------------------------------------------------------------------------------------------


def test_the_pause_backs_off_up_to_a_bound_and_logs_start_and_end(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    pause = wire.RegistryPause(logging.getLogger("test"), first_s=0.1, max_s=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test"):
        waits = [pause.wait_s("down", "t[0]@5") for _ in range(6)]
        assert pause.paused
        now[0] = 12.0
        pause.resumed()
        pause.resumed()
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert not pause.paused and pause.pauses == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "pausing at t[0]@5 (nothing is dead-lettered or committed past it)" in lines[0]
    assert "answers again after 12.0 s" in lines[1]


# -- declaring and producing --------------------------------------------------------------------------------


def test_a_source_opts_into_the_registry_wire_format() -> None:
    assert _spec(JsonFormat(DDL)).wire == "plain"
    assert _spec(JsonFormat(DDL), wire="confluent").wire == "confluent"
    with pytest.raises(SchemaDeclarationError, match="wire 'avro' is not one of plain, confluent"):
        _spec(JsonFormat(DDL), wire="avro")
    source = stream_source(name="p", topic="t", schema=JsonFormat(DDL), timestamp_field="event_time", key="payment_id")
    source.tags["livectx.wire"] = "magic"
    with pytest.raises(RepoError, match=r"tag livectx\.wire"):
        compile_source(source, "payment_id")


def _mock_client() -> MockSchemaRegistryClient:
    return MockSchemaRegistryClient({"url": "mock://"})


@pytest.mark.parametrize("schema", [JsonFormat(DDL), AvroFormat(json.dumps(V2))], ids=["json", "avro"])
def test_producers_frame_with_the_registered_id_and_never_register(schema: Any) -> None:
    spec = _spec(schema, wire="confluent")
    client = _mock_client()
    encoder = RegistryEncoder([spec], lambda: client)
    with pytest.raises(SchemaNotRegistered, match=r"not registered under shop.payments-value .*livectx schemas apply"):
        encoder.check()
    assert client.get_subjects() == []  # nothing registered by the producer
    declared = declared_schema(spec)
    schema_id = client.register_schema(declared.subject, Schema(declared.schema_str, declared.schema_type))
    assert encoder.check() == {"payment": schema_id}
    record = {"payment_id": "p1", "user_id": "u1", "amount": 2.5, "event_time": "2026-03-10T00:00:00Z"}
    if declared.schema_type == "AVRO":
        at = datetime(2026, 3, 10, tzinfo=UTC)
        record = {"payment_id": "p1", "amount": 2.5, "event_time": at, "channel": "app"}
    event = (
        spec.model.model_validate(record)
        if declared.schema_type == "AVRO"
        else serde.decode(spec.model, json.dumps(record).encode())
    )
    key, value, headers = encoder.encode(event, "renamed.topic")  # the subject stays the declared topic's
    assert key == b"p1" and wire.split(value)[0] == schema_id
    assert headers == [("livectx-schema", b"payment.v1")]
    assert serde.decode(spec.model, value, wire.SchemaCache(client)) == event


def test_plain_sources_are_encoded_as_before_without_a_registry() -> None:
    spec = _spec(JsonFormat(DDL))
    encoder = RegistryEncoder([spec], lambda: pytest.fail("no registry needed"))
    assert encoder.check() == {}
    event = serde.decode(spec.model, JSON_RECORD)
    assert encoder.encode(event, "t") == serde.encode(event)
