"""Idle-entity eviction in the running engine: entities idle past their views' ttl (plus a window) lose
their window state and their online rows; active entities are untouched and equal the recomputation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import redis

from livectx.features.redis_layout import FeastRedisLayout
from livectx.settings import Settings

from .engine_helpers import (
    START,
    TXN_GROUPS,
    online_mismatches,
    payment,
    produce,
    run_worker_to_completion,
    worker_command,
)
from .kafka_helpers import create_topic


def test_idle_entities_lose_state_and_rows_and_active_ones_are_untouched(
    settings: Settings,
    feature_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    topic = create_topic(settings, f"test.{unique}.txn", 2)
    dlq, late = create_topic(settings, f"test.{unique}.dlq"), create_topic(settings, f"test.{unique}.late")
    horizon = max(g.ttl + timedelta(milliseconds=g.window.size_ms + g.window.grace_ms) for g in TXN_GROUPS)
    idle = [f"{unique}-idle{n}" for n in range(20)]
    active = [f"{unique}-active{n}" for n in range(20)]
    early = [payment(u, START + timedelta(minutes=m), m) for m in range(3) for u in idle + active]
    later = START + horizon + timedelta(hours=2)  # the idle users' last payment is now past every horizon
    recent = [payment(u, later + timedelta(seconds=m), 10 + m, amount=5.0 + m) for m in range(3) for u in active]
    produce(settings, topic, early + recent)
    group = f"test-{unique}"
    run_worker_to_completion(worker_command(group, topic, dlq, late), tmp_path / "worker.log")

    client = redis.Redis.from_url(settings.redis_url)
    state_entities = set()
    for p in range(2):
        for field in client.hkeys(f"livectx:engine:{group}:state:{topic}:{p}"):
            state_entities.add(field.decode().partition("\x1f")[2])
    assert state_entities == set(active)  # every view's state of the idle users is gone, all active kept
    assert online_mismatches(feature_store, TXN_GROUPS, early + recent, entities=active) == []
    for view in TXN_GROUPS:  # Feast reads nothing for the idle users, and their hashes are gone
        refs = [f"{view.name}:{f.name}" for f in view.features]
        got = feature_store.get_online_features(features=refs, entity_rows=[{"user_id": u} for u in idle]).to_dict()
        assert all(v is None for f in view.features for v in got[f.name]), view.name
    layout = FeastRedisLayout("livectx", TXN_GROUPS[0], 3)
    assert client.exists(*(layout.redis_key(u) for u in idle)) == 0
    assert client.exists(*(layout.redis_key(u) for u in active)) == len(active)
