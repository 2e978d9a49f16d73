"""The feature repo as the one place a domain is declared: schemas, declarations, plain Feast, sanity bounds."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from livectx import serde
from livectx.errors import SchemaError
from livectx.repo.compile import RepoError
from livectx.repo.loader import load_repo
from livectx.repo.schema import SchemaDeclarationError, event_model, parse_avro, parse_ddl
from tests.example import FRAUD_MODEL_FEATURES, REPO, Transaction

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
AVRO = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "qty", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "S", "symbols": ["NEW", "PAID"]}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
FEATURE_STORE_YAML = "project: plain\nprovider: local\nregistry: registry.db\nonline_store:\n  type: sqlite\n"


def test_ddl_columns_are_required_unless_they_have_a_default() -> None:
    columns = {c.name: c for c in parse_ddl("a STRING, b BIGINT NOT NULL, c DOUBLE DEFAULT 1.5, d STRING DEFAULT NULL")}
    assert columns["a"].required and columns["b"].required and columns["b"].type == "int"
    assert (columns["c"].default, columns["c"].required) == (1.5, False)
    assert columns["d"].nullable and columns["d"].default is None


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ("a STRUCT<x INT>", "column a has type STRUCT"),
        ("a STRING, a INT", "column a is declared twice"),
        ("a INT DEFAULT 'x'", "column a: default 'x' is not a int literal"),
        ("nonsense", "cannot read column 'nonsense'"),
    ],
)
def test_unreadable_ddl_names_the_source_and_column(ddl: str, message: str) -> None:
    with pytest.raises(SchemaDeclarationError, match=f"source orders: {message}"):
        parse_ddl(ddl, "orders")


def test_avro_round_trip_and_its_dead_letter_reasons() -> None:
    model = event_model(
        "orders", parse_avro(json.dumps(AVRO)), timestamp_field="ts", key_field="order_id", wire_format="avro",
        avro_schema=AVRO,
    )  # fmt: skip
    event = model.model_validate({"order_id": "o1", "amount": 2.5, "qty": 3, "status": "PAID", "ts": T0})
    key, value, _headers = serde.encode(event)
    assert key == b"o1" and value[:1] != b"{"  # binary Avro, not JSON
    again = serde.decode(model, value)
    assert again == event and again.event_time_ms == int(T0.timestamp() * 1000) and again.note is None
    with pytest.raises(SchemaError, match=r"not Avro of orders\.v1"):
        serde.decode(model, value[:-3])
    with pytest.raises(SchemaError, match="bytes after the record"):
        serde.decode(model, value + b"\x00")
    with pytest.raises(SchemaError, match="where an Avro event was expected"):
        serde.decode(model, None)


def test_non_finite_numbers_are_schema_violations_unless_the_source_allows_them() -> None:
    good = Transaction(
        event_time=T0, txn_id="t", user_id="u", card_id="c", merchant_id="m", amount=1.0, currency="EUR", ip="i",
        country="DE",
    )  # fmt: skip
    raw = good.model_dump_json().encode()
    for token in (b"Infinity", b"-Infinity", b"NaN", b"1e400"):
        with pytest.raises(SchemaError, match="amount: Input should be a finite number"):
            serde.decode(Transaction, raw.replace(b'"amount":1.0', b'"amount":' + token))
    lenient = event_model(
        "x", parse_ddl("t TIMESTAMP, k STRING, v DOUBLE"), timestamp_field="t", key_field="k", wire_format="json",
        allow_non_finite=True,
    )  # fmt: skip
    assert lenient.model_validate_json(b'{"t": "2026-03-10T12:00:00Z", "k": "a", "v": Infinity}').v == float("inf")


def test_event_times_far_from_the_kafka_timestamp_are_implausible() -> None:
    ms = int(T0.timestamp() * 1000)
    serde.check_event_time(Transaction, ms, ms + 3_600_000 - 1)  # an hour behind is fine
    serde.check_event_time(Transaction, ms, None)  # no timestamp: no bound
    with pytest.raises(SchemaError, match=r"implausible event time: .* ahead of the record's Kafka timestamp"):
        serde.check_event_time(Transaction, int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000), ms)
    with pytest.raises(SchemaError, match="behind the record's Kafka timestamp"):
        serde.check_event_time(Transaction, 0, ms)


def test_the_columnar_path_leaves_implausible_batches_to_the_per_record_path() -> None:
    from livectx_ingest.streaming.apply import times_plausible as _times_plausible

    class Record:
        def __init__(self, ts: int) -> None:
            self._ts = ts

        def timestamp(self) -> tuple[int, int]:
            return (1, self._ts)

    ms = int(T0.timestamp() * 1000)
    table = pa.table({"event_time_ms": pa.array([ms, ms + 1000], pa.int64())})
    assert _times_plausible(Transaction, table, [Record(ms), Record(ms + 1000)])
    assert not _times_plausible(Transaction, table, [Record(ms - 2 * 3_600_000), Record(ms)])
    assert _times_plausible(Transaction, table, [Record(0), Record(-1)])  # records without timestamps


def test_the_example_repo_compiles_to_what_the_engine_runs() -> None:
    assert [g.name for g in REPO.groups][:2] == ["user_txn_5m", "user_txn_1h"]  # declaration order
    hourly = REPO.group("user_txn_1h")
    assert (hourly.window.kind, hourly.window.size_ms, hourly.window.step_ms) == ("hopping", 3_600_000, 900_000)
    assert REPO.group("user_txn_10m").window.kind == "sliding"
    assert REPO.group("user_login_5m").features[0].where == ("success", False)
    assert REPO.service_views("fraud_features")[0] == "user_txn_5m"
    assert REPO.services["fraud_features"].model_columns == FRAUD_MODEL_FEATURES
    assert set(REPO.memory) == {
        "tickets_memory",
        "reviews_memory",
        "documents_memory",
        "app_reviews_memory",
        "app_products_memory",
    }
    assert set(REPO.generators) == {"fraud", "support", "shop"}


def test_the_fraud_agent_reads_the_columns_the_repo_declares() -> None:
    from livectx_agents.example_fraud import MODEL_FEATURES

    assert MODEL_FEATURES == FRAUD_MODEL_FEATURES


def _plain_repo(tmp_path: Path, body: str) -> Path:
    (tmp_path / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (tmp_path / "repo.py").write_text(textwrap.dedent(body))
    return tmp_path


PLAIN = """
from datetime import timedelta

from feast import Entity, FeatureService, Field, FileSource, KafkaSource, StreamFeatureView, ValueType
from feast.aggregation import Aggregation
from feast.data_format import JsonFormat
from feast.types import Float64, String

shop = Entity(name="shop", join_keys=["shop_id"], value_type=ValueType.STRING)
sales = KafkaSource(
    name="sales",
    topic="plain.sales",
    timestamp_field="sold_at",
    message_format=JsonFormat("sale_id STRING, shop_id STRING, price DOUBLE, sold_at TIMESTAMP"),
    batch_source=FileSource(path="sales.parquet", timestamp_field="sold_at"),
    watermark_delay_threshold=timedelta(seconds=45),
)
shop_sales = StreamFeatureView(
    name="shop_sales",
    source=sales,
    entities=[shop],
    schema=[Field(name="shop_id", dtype=String), Field(name="sales_30m", dtype=Float64),
            Field(name="revenue_30m", dtype=Float64)],
    aggregations=[
        Aggregation(column="sale_id", function="count", time_window=timedelta(minutes=30), name="sales_30m"),
        Aggregation(column="price", function="sum", time_window=timedelta(minutes=30), name="revenue_30m"),
        {EXTRA}
    ],
    timestamp_field="sold_at",
)
shop_service = FeatureService(name="shop_service", features=[shop_sales])
"""


def test_a_repo_of_plain_feast_classes_runs_as_is(tmp_path: Path) -> None:
    repo = load_repo(_plain_repo(tmp_path, PLAIN.replace("{EXTRA}", "")))
    (view,) = repo.groups
    assert (view.name, view.source_topic, view.entity_key, view.window.kind) == (
        "shop_sales",
        "plain.sales",
        "shop_id",
        "tumbling",
    )
    assert view.window.grace == timedelta(seconds=45)  # watermark_delay_threshold
    assert [f.result_type for f in view.features] == ["float", "float"]  # as the view's schema types them
    assert repo.source("sales").key_field == "shop_id"  # from the views' entity
    assert repo.service_views("shop_service") == ("shop_sales",)
    event = repo.model("sales").model_validate_json(
        b'{"sale_id": "s", "shop_id": "x", "price": 2.0, "sold_at": "2026-03-10T12:00:00Z"}'
    )
    assert event.event_time == T0 and event.key == "x"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("Aggregation(column=\"price\", function=\"max\", time_window=timedelta(minutes=10))",
         "view shop_sales: all aggregations must share one time_window"),
        ("Aggregation(column=\"colour\", function=\"max\", time_window=timedelta(minutes=30), name=\"x\")",
         "view shop_sales: feature x: 'colour' is not a field"),
        ("Aggregation(column=\"price\", function=\"median\", time_window=timedelta(minutes=30), name=\"m\")",
         "view shop_sales: feature m: unknown function 'median'"),
    ],
)  # fmt: skip
def test_a_view_livectx_cannot_run_fails_naming_the_view_and_field(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(RepoError, match=message):
        load_repo(_plain_repo(tmp_path, PLAIN.replace("{EXTRA}", extra + ",")))


def test_livectx_helpers_refuse_a_field_the_source_lacks_at_declaration() -> None:
    from livectx.repo.declare import agg, stream_view, tumbling

    source = REPO_SOURCE()
    with pytest.raises(SchemaDeclarationError, match="view v: feature f: 'nope' is not a field of source transaction"):
        stream_view(name="v", source=source, entity=ENTITY(), window=tumbling(timedelta(minutes=5)),
                    features=[agg("f", "sum", "nope")])  # fmt: skip


def REPO_SOURCE():  # type: ignore[no-untyped-def]
    from feast.data_format import JsonFormat

    from livectx.repo.declare import stream_source

    return stream_source(
        name="transaction", topic="t", schema=JsonFormat("event_time TIMESTAMP, user_id STRING, amount DOUBLE"),
        timestamp_field="event_time", key="user_id",
    )  # fmt: skip


def ENTITY():  # type: ignore[no-untyped-def]
    from feast import Entity, ValueType

    return Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)


def test_the_scaffold_is_a_repo_that_compiles(tmp_path: Path) -> None:
    from livectx.repo.scaffold import scaffold

    scaffold(tmp_path / "new", "fresh_shop")
    repo = load_repo(tmp_path / "new")
    assert repo.project == "fresh_shop" and repo.source("messages").wire_format == "avro"
    assert [g.name for g in repo.groups] == ["customer_activity_1h"] and list(repo.memory) == ["customer_messages"]
    from livectx.produce import generated_events

    topic, event = next(generated_events(repo, "messages", 1, T0))
    assert topic == "fresh_shop.messages" and event.amount >= 0
    assert repo.source("messages").wire == "plain"


def test_the_scaffold_can_write_through_the_registry(tmp_path: Path) -> None:
    from livectx.repo.scaffold import scaffold

    scaffold(tmp_path / "reg", "reg_shop", wire="confluent")
    repo = load_repo(tmp_path / "reg")
    assert repo.source("messages").wire == "confluent" and repo.source("messages").wire_format == "avro"
    assert "livectx schemas apply" in (tmp_path / "reg" / "sources.py").read_text()


BAD_TAG = 'watermark_delay_threshold=timedelta(seconds=45), tags={"livectx.partitions": "x"},'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (PLAIN.replace("{EXTRA}", "").replace("shop_id STRING, price", "shop_id BIGINT, price"),
         "entity key shop_id must be a required STRING"),
        (PLAIN.replace("{EXTRA}", "").replace("watermark_delay_threshold=timedelta(seconds=45),",
                                              BAD_TAG),
         "declares something livectx cannot read: ValueError"),
    ],
)  # fmt: skip
def test_keys_livectx_cannot_serve_and_malformed_tags_fail_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RepoError, match=message):
        load_repo(_plain_repo(tmp_path, body))


def test_a_nullable_kafka_key_is_refused() -> None:
    with pytest.raises(SchemaDeclarationError, match="key field k must be required"):
        event_model("x", parse_ddl("t TIMESTAMP, k STRING DEFAULT NULL"), timestamp_field="t", key_field="k",
                    wire_format="json")  # fmt: skip
