"""One engine checkpoint (:class:`Committer`): side outputs are acknowledged before the store commit,
the crash points sit on either side of it, the state and rows written are those of the entities touched,
committed partitions are marked clean, and nothing is committed when nothing moved. And the crash points
(:class:`CrashPoints`) fire only where the environment asks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livectx_ingest.streaming import crash as crash_module
from livectx_ingest.streaming.apply import Partition, plan_sources
from livectx_ingest.streaming.checkpoint import FencedError, PartitionId
from livectx_ingest.streaming.commit import Committer, SideOutputs
from livectx_ingest.streaming.crash import CrashPoints
from livectx_ingest.streaming.mirror import OffsetMirror
from livectx_ingest.streaming.online_writer import FeastRedisWriter

from livectx.features.spec import FeatureGroup
from tests.example import FEATURE_GROUPS

from .engine_fakes import MemoryCheckpoints, ScriptedConsumer

GROUP: FeatureGroup = next(g for g in FEATURE_GROUPS if g.name == "user_txn_5m")
TP: PartitionId = (GROUP.source_topic, 0)
START_MS = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp() * 1000)


class NoRedis:
    def register_script(self, _script: str) -> None:
        return None


class Flushing:
    """A side output that records when it was flushed, in the shared event log."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    def flush(self, *_args: Any) -> None:
        self.events.append(f"flush {self.name}")


class LoggedStore(MemoryCheckpoints):
    log: list[str] | None = None
    last_rows: Any = None

    def commit(self, *args: Any, **kwargs: Any) -> None:
        super().commit(*args, **kwargs)
        assert self.log is not None
        self.log.append("store commit")
        self.last_rows = args[4]


def _setup(store: LoggedStore, events: list[str]) -> tuple[Committer, dict[PartitionId, Partition]]:
    (epoch,) = store.claim([TP]).values()
    part = plan_sources([GROUP], [], {}, columnar=False)[TP[0]].new_partition(epoch, None)
    side = SideOutputs(Flushing("dead letters", events), Flushing("late", events), None)  # type: ignore[arg-type]
    committer = Committer(
        store, {GROUP.name: FeastRedisWriter(NoRedis(), "livectx", GROUP)}, side,
        OffsetMirror(ScriptedConsumer([])), lambda phase: events.append(phase), fenced=True, on_written=None,
    )  # fmt: skip
    return committer, {TP: part}


def _apply(part: Partition, entity: str, offset: int) -> None:
    state = part.states[GROUP.name]
    state.apply(entity, START_MS + offset * 1000, offset, tuple(1.0 for _ in state.columns))
    part.dirty[GROUP.name].add(entity)
    part.next_offset = offset + 1


def test_side_outputs_then_crash_point_then_one_commit_then_crash_point() -> None:
    events: list[str] = []
    store = LoggedStore()
    store.log = events
    committer, partitions = _setup(store, events)
    _apply(partitions[TP], "a", 0)
    _apply(partitions[TP], "b", 1)
    committer.checkpoint(partitions)
    assert events == ["flush dead letters", "flush late", "before-commit", "store commit", "after-commit"]
    assert set(store.states[TP]) == {f"{GROUP.name}\x1fa", f"{GROUP.name}\x1fb"}
    assert store.stored_offsets == {TP: 2} and len(store.last_rows) == 2  # one row per entity
    part = partitions[TP]
    assert part.committed == 2 and part.dirty[GROUP.name] == set()
    assert committer.timing.last_committed_at is not None


def test_nothing_moved_nothing_committed() -> None:
    events: list[str] = []
    store = LoggedStore()
    store.log = events
    committer, partitions = _setup(store, events)
    committer.checkpoint(partitions)  # no offset yet
    _apply(partitions[TP], "a", 0)
    committer.checkpoint(partitions)
    events.clear()
    committer.checkpoint(partitions)  # nothing since
    assert events == [] and store.commits == 1


def test_a_fenced_commit_leaves_the_partition_uncommitted_and_skips_after_commit() -> None:
    events: list[str] = []
    store = LoggedStore()
    store.log = events
    committer, partitions = _setup(store, events)
    _apply(partitions[TP], "a", 0)
    store.claim([TP])  # another worker took it over
    with pytest.raises(FencedError):
        committer.checkpoint(partitions)
    assert "after-commit" not in events and partitions[TP].committed is None
    assert partitions[TP].dirty[GROUP.name] == {"a"}


def test_crash_points_fire_only_at_the_phase_and_count_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashed: list[str] = []
    monkeypatch.setattr(crash_module.faults, "crash", lambda: crashed.append("killed"))
    monkeypatch.delenv("TEST_ENGINE_CRASH", raising=False)
    unarmed = CrashPoints("TEST_ENGINE_CRASH")
    assert not unarmed.armed
    monkeypatch.setenv("TEST_ENGINE_CRASH", "event:3")
    unarmed.reached("event")  # read once, at construction: still unarmed
    points = CrashPoints("TEST_ENGINE_CRASH")
    assert points.armed
    for _ in range(2):
        points.reached("event")
        points.reached("before-commit")
    assert crashed == []
    points.reached("event")
    assert crashed == ["killed"]


def test_evicted_entities_are_deleted_in_the_commit() -> None:
    events: list[str] = []
    store = LoggedStore()
    store.log = events
    short = dataclasses.replace(GROUP, ttl=timedelta(seconds=1))
    (epoch,) = store.claim([TP]).values()
    part = plan_sources([short], [], {}, columnar=False)[TP[0]].new_partition(epoch, None)
    side = SideOutputs(Flushing("dead letters", events), Flushing("late", events), None)  # type: ignore[arg-type]
    committer = Committer(
        store, {short.name: FeastRedisWriter(NoRedis(), "livectx", short)}, side,
        OffsetMirror(ScriptedConsumer([])), lambda _phase: None, fenced=True, on_written=None,
    )  # fmt: skip
    state = part.states[short.name]
    state.apply("old", START_MS, 0, tuple(1.0 for _ in state.columns))
    part.dirty[short.name].add("old")
    part.next_offset = 1
    committer.checkpoint({TP: part})
    state.apply("new", START_MS + 86_400_000, 1, tuple(1.0 for _ in state.columns))
    part.dirty[short.name].add("new")
    part.next_offset = 2
    committer.checkpoint({TP: part}, final=True)  # final: the idle sweep runs now
    assert set(store.states[TP]) == {f"{short.name}\x1fnew"}
