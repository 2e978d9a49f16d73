"""The fast read path returns exactly what Feast's get_online_features returns, for every feature view."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from livectx.errors import LivectxError
from livectx.features.online_reader import OnlineFeatureReader
from livectx.settings import Settings
from tests.example import FEATURE_GROUPS, FEATURE_SERVICES, group_named


def _push_random_rows(feature_store, users: list[str], rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    for group in FEATURE_GROUPS:
        present = [u for u in users if rng.random() < 0.8]  # some entities miss some views
        columns: dict[str, list] = {
            group.entity_key: present,
            "event_timestamp": [now - timedelta(seconds=rng.randint(0, 99)) for _ in present],
            "created_timestamp": [now] * len(present),
        }
        for feature in group.features:
            if feature.result_type == "int":
                columns[feature.name] = [rng.randint(0, 10**6) for _ in present]
            else:
                columns[feature.name] = [None if rng.random() < 0.1 else rng.uniform(-1e6, 1e6) for _ in present]
        for name in group.metadata_fields:
            columns[name] = [rng.randint(0, 2**40) for _ in present]
        frame = pd.DataFrame(columns)
        for feature in group.features:  # keep ints as Int64 so pushing a None-free column stays integral
            if feature.result_type == "int":
                frame[feature.name] = frame[feature.name].astype("int64")
        feature_store.write_to_online_store(group.name, frame)


def test_fast_path_equals_feast_for_every_view_and_service(settings: Settings, feature_store, unique: str) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    users = [f"{unique}-u{i}" for i in range(40)]
    _push_random_rows(feature_store, users, rng)
    reader = OnlineFeatureReader.from_settings(settings)
    asked = [*users, f"{unique}-nobody"]
    for group in FEATURE_GROUPS:
        rows = [{group.entity_key: u} for u in asked]
        refs = [f"{group.name}:{c}" for c in (*(f.name for f in group.features), *group.metadata_fields)]
        for full in (False, True):
            expected = feature_store.get_online_features(
                features=refs, entity_rows=rows, full_feature_names=full
            ).to_dict()
            assert reader.read(asked, refs, full_feature_names=full) == expected, group.name
    for name in FEATURE_SERVICES:
        rows = [{group_named(FEATURE_SERVICES[name][0]).entity_key: u} for u in asked]
        service = feature_store.get_feature_service(name)
        expected = feature_store.get_online_features(features=service, entity_rows=rows).to_dict()
        assert reader.read(asked, name) == expected, name
    # A subset of one view, in a different order than declared.
    refs = ["user_txn_1h:last_txn_amount", "user_txn_1h:txn_amount_sum_1h"]
    assert (
        reader.read(users[:5], refs)
        == feature_store.get_online_features(features=refs, entity_rows=[{"user_id": u} for u in users[:5]]).to_dict()
    )


def test_unknown_names_are_clear_errors(settings: Settings, stack) -> None:  # type: ignore[no-untyped-def]
    reader = OnlineFeatureReader.from_settings(settings)
    with pytest.raises(LivectxError, match="unknown feature service 'nope'"):
        reader.read(["u1"], "nope")
    with pytest.raises(LivectxError, match="unknown feature reference 'user_txn_5m:nope'"):
        reader.read(["u1"], ["user_txn_5m:nope"])
