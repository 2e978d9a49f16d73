"""Rows of a run's own users pushed into the online store through Feast, for the read benchmarks
(``context``, ``online-read``).

The users get a prefix of the run's own, so a read never finds a row an earlier run (or another bench on
the same Redis) left behind, and the rows go in through Feast's own write path, so the key and field
encoding every read path is compared on is Feast's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from livectx.feast_store import apply_feature_repo, open_feature_store
from livectx.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def bench_users(settings: Settings, count: int) -> tuple[FeatureStore, list[str], datetime]:
    """The feature repo applied and opened, ``count`` user ids of this run's own, and the time to stamp
    their rows with."""
    apply_feature_repo(settings)
    store = open_feature_store(settings)
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    return store, [f"{prefix}{n}" for n in range(count)], datetime.now(UTC)


def write_rows(store: FeatureStore, view: str, users: list[str], now: datetime, columns: dict[str, Any]) -> None:
    """One online row of ``view`` per user, stamped ``now``, with ``columns`` (a list of values each)."""
    import pandas as pd

    stamps = [now] * len(users)
    frame = pd.DataFrame({"user_id": users, "event_timestamp": stamps, "created_timestamp": stamps, **columns})
    store.write_to_online_store(view, frame)
