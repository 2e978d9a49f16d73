"""Under a backlog the engine spaces checkpoints out in time, but not in size: once the rows waiting reach
the cadence's bound, a checkpoint starts, so a catch-up over many entities never holds them all at once."""

from __future__ import annotations

import gc

import pytest
from livectx_ingest.streaming import engine as engine_module
from livectx_ingest.streaming.engine import FeatureEngine

from .engine_fakes import MemoryCheckpoints, ScriptedConsumer, SideOutputs, records
from .test_engine_ownership import GROUP, TOPIC, NoRedis, _payment


def _catch_up(max_rows: int, monkeypatch: pytest.MonkeyPatch) -> MemoryCheckpoints:
    """Three full batches of four new users each, an hour of checkpoint interval: a backlog throughout,
    each batch applied as it comes (a pool of four: under a backlog the engine pools records first)."""
    monkeypatch.setattr(engine_module, "POOL", 4)
    batches = [records(TOPIC, 0, [_payment(f"u{4 * b + i}", b) for i in range(4)], 4 * b) for b in range(3)]
    consumer = ScriptedConsumer([("assign", [(TOPIC, 0)]), *(("records", batch) for batch in batches)])
    store, side = MemoryCheckpoints(), SideOutputs()
    engine = FeatureEngine(
        consumer=consumer, redis_client=NoRedis(), consumer_group="g", groups=[GROUP], topic_map={},
        dead_letters=side, late=side, offline=None, commit_interval_s=3600.0, max_batch=4, columnar=False,  # type: ignore[arg-type]
        checkpoints=store,
    )  # fmt: skip
    engine._cadence.max_rows = max_rows  # the bound, small enough for a test
    consumer.engine = engine
    try:
        engine.run()
    finally:
        gc.unfreeze()
    return store


def test_a_catch_up_checkpoints_whenever_the_rows_waiting_reach_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _catch_up(6, monkeypatch)
    # 4 rows after the first batch (under 6), 8 after the second: a checkpoint; 4 more, then the final one.
    assert store.commits == 2 and store.stored_offsets == {(TOPIC, 0): 12}


def test_without_reaching_the_bound_a_catch_up_commits_once_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _catch_up(1_000, monkeypatch)
    assert store.commits == 1 and store.stored_offsets == {(TOPIC, 0): 12}
