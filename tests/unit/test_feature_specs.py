from datetime import timedelta

import pytest

from livectx.features.spec import Feature, FeatureGroup, Window
from tests.example import FEATURE_GROUPS, Login, Transaction, group_named


def test_catalog_names_are_unique_and_features_typed() -> None:
    names = [f.name for g in FEATURE_GROUPS for f in g.features]
    assert len(names) == len(set(names))
    assert len({g.name for g in FEATURE_GROUPS}) == len(FEATURE_GROUPS)
    for name in (
        "txn_count_5m",
        "txn_amount_sum_1h",
        "distinct_merchants_24h",
        "distinct_ips_10m",
        "login_failures_5m",
        "clicks_last_1h",
    ):
        assert name in names
    assert {g.window.kind for g in FEATURE_GROUPS} == {"tumbling", "hopping", "sliding"}
    assert group_named("user_txn_5m").features[0].result_type == "int"


def test_freshness_columns_are_part_of_every_group() -> None:
    group = group_named("user_login_5m")
    assert group.metadata_fields == (
        "user_login_5m__event_ms",
        "user_login_5m__written_ms",
        "user_login_5m__window_end_ms",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "hopping", "size": timedelta(hours=1)}, "needs step"),
        ({"kind": "tumbling", "size": timedelta(hours=1), "step": timedelta(minutes=5)}, "must not set"),
        ({"kind": "hopping", "size": timedelta(hours=1), "step": timedelta(minutes=7)}, "divide"),
    ],
)
def test_bad_windows_are_rejected(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        Window(**kwargs)


def test_group_checks_fields_against_the_event_model() -> None:
    window = Window("tumbling", timedelta(minutes=5))
    with pytest.raises(ValueError, match="no field 'nope'"):
        FeatureGroup("g", "t", Transaction, "user", "user_id", window, (Feature("f", "sum", "nope"),))
    with pytest.raises(ValueError, match="needs a column"):
        Feature("f", "sum")
    login = FeatureGroup("g", "t", Login, "user", "user_id", window, (Feature("f", "count", where=("success", False)),))
    assert not login.rekeyed
