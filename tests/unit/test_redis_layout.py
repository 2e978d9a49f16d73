"""The fast ValueProto decoder agrees with protobuf for every value the engine writes (and falls back)."""

from __future__ import annotations

import pytest
from feast.protos.feast.types.Value_pb2 import Value

from livectx.features.catalog import group_named
from livectx.features.redis_layout import FeastRedisLayout

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
