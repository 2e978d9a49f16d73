"""The fast ValueProto decoder agrees with protobuf for every value the engine writes (and falls back)."""

from __future__ import annotations

import pytest
from feast.protos.feast.types.Value_pb2 import Value

from livectx.features.redis_layout import FeastRedisLayout
from tests.example import group_named

LAYOUT = FeastRedisLayout("livectx", group_named("user_txn_5m"))


@pytest.mark.parametrize("value", [0, 1, -1, 127, 128, 300, 2**40, -(2**40), 2**63 - 1, -(2**63)])
def test_int64(value: int) -> None:
    assert LAYOUT.decode(Value(int64_val=value).SerializeToString()) == value


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, 912.25, -3.25e300, float("inf")])
def test_double(value: float) -> None:
    assert LAYOUT.decode(Value(double_val=value).SerializeToString()) == value


def test_unset_missing_and_other_types() -> None:
    assert LAYOUT.decode(Value().SerializeToString()) is None
    assert LAYOUT.decode(None) is None
    assert LAYOUT.decode(Value(string_val="x").SerializeToString()) == "x"
    assert LAYOUT.decode(Value(bool_val=True).SerializeToString()) is True


def test_encode_then_decode_round_trips_by_column_type() -> None:
    assert LAYOUT.decode(LAYOUT.encode("txn_count_5m", 7)) == 7
    assert LAYOUT.decode(LAYOUT.encode("txn_amount_max_5m", 12.5)) == 12.5
    assert LAYOUT.decode(LAYOUT.encode("txn_amount_max_5m", None)) is None


def test_wire_encoding_equals_protobuf_serialisation() -> None:
    from feast.protos.feast.types.Value_pb2 import Value
    from google.protobuf.timestamp_pb2 import Timestamp

    from livectx.features.redis_layout import FeastRedisLayout
    from tests.example import group_named

    group = group_named("user_txn_1h")
    layout = FeastRedisLayout("livectx", group)
    count_col = group.event_time_field  # an int column
    for value in (0, 1, 127, 128, 300, 2**40, 2**63 - 1, -1, -(2**63)):
        assert layout.encode(count_col, value) == Value(int64_val=value).SerializeToString()
    for value in (0.0, -0.0, 1.5, -3.25, 1e300, float("inf")):
        assert layout.encode("txn_amount_sum_1h", value) == Value(double_val=value).SerializeToString()
    assert layout.encode("txn_amount_sum_1h", None) == Value().SerializeToString()
    for ms in (0, 999, 1000, 1_773_100_800_123, -1500):
        ts = Timestamp()
        ts.FromMilliseconds(ms)
        assert layout.encode_timestamp(ms) == ts.SerializeToString(), ms
