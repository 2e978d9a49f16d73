"""Freshness split into stages (:mod:`livectx_ingest.streaming.stages`): each record's age at its commit is
cut at the broker's append, the engine's consume, its apply and the commit; records the broker did not
stamp, or whose creation is unknown, are not sampled; work dropped after a fence is not counted. The last
test drives the engine's real loop with fakes, so the hooks sit where the stages say."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from livectx_ingest.streaming.stages import LOG_APPEND_TIME, StageClock

from .engine_fakes import MemoryCheckpoints, Record, records
from .test_engine_ownership import TOPIC, _payments, _run


@dataclass
class Stamped:
    """A consumed record as the stage clock reads it: its timestamp and a creation time."""

    created: float | None
    appended: int
    kind: int = LOG_APPEND_TIME

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (self.kind, self.appended)


class Ticks:
    """A wall clock that reads the values it is given, in order."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


def test_each_stage_is_the_time_between_two_stamps_and_they_add_up_to_the_age() -> None:
    clock = StageClock(lambda m: m.created, clock=Ticks(100.0, 130.0, 175.0))
    clock.consumed([Stamped(created=90.0, appended=95), Stamped(created=80.0, appended=92)])
    clock.applied()
    clock.committed()
    assert clock.samples == [(5.0, 5.0, 30.0, 45.0), (12.0, 8.0, 30.0, 45.0)]
    assert [sum(s) for s in clock.samples] == [85.0, 95.0]  # visible at 175: 175 - created
    summary = clock.summary()
    assert summary["samples"] == 2 and summary["commit_p50_ms"] == 45.0 and summary["total_p99_ms"] >= 94.0


def test_records_without_a_broker_stamp_or_a_creation_time_are_not_sampled() -> None:
    clock = StageClock(lambda m: m.created, clock=Ticks(100.0, 110.0, 120.0))
    clock.consumed([Stamped(created=90.0, appended=95, kind=1), Stamped(created=None, appended=95)])
    clock.applied()
    clock.committed()
    assert clock.samples == [] and clock.unstamped == 1


def test_work_dropped_after_a_fence_is_not_counted_and_records_wait_for_the_commit_after_their_apply() -> None:
    clock = StageClock(lambda m: m.created, clock=Ticks(10.0, 20.0, 30.0, 40.0, 50.0, 60.0))
    clock.consumed([Stamped(created=1.0, appended=2)])  # 10
    clock.applied()  # 20
    clock.dropped()  # fenced: re-consumed later
    clock.consumed([Stamped(created=1.0, appended=2)])  # 30
    clock.consumed([Stamped(created=3.0, appended=4)])  # 40
    clock.applied()  # 50
    clock.committed()  # 60
    assert clock.samples == [(1.0, 28.0, 20.0, 10.0), (1.0, 36.0, 10.0, 10.0)]


def test_the_sample_limit_keeps_the_first_records() -> None:
    ticks = count(1000.0)
    clock = StageClock(lambda m: m.created, limit=3, clock=lambda: next(ticks))
    for _ in range(3):
        clock.consumed([Stamped(created=1.0, appended=2), Stamped(created=1.0, appended=2)])
        clock.applied()
        clock.committed()
    assert len(clock.samples) == 3


class AppendStamped(Record):
    def timestamp(self) -> tuple[int, int]:
        return (LOG_APPEND_TIME, 1_000 + self._offset)


def test_the_engine_stamps_records_as_it_consumes_applies_and_commits_them() -> None:
    batch = [AppendStamped(*vars(r).values()) for r in records(TOPIC, 0, _payments("a", 4))]
    ticks = count(2_000.0, 10.0)  # every stamp 10 ms after the one before
    stages = StageClock(lambda m: 990.0 + m.offset(), clock=lambda: next(ticks))
    script = [("assign", [(TOPIC, 0)]), ("records", batch[:2]), ("records", batch[2:])]
    _run(MemoryCheckpoints(), script, stages=stages)
    # Consumed, applied, committed: three stamps per consume; both batches were committed before the next.
    assert [s[0] for s in stages.samples] == [10.0] * 4  # created 10 ms before the append
    assert [s[1] for s in stages.samples] == [1000.0, 999.0, 1028.0, 1027.0]
    assert [s[2:] for s in stages.samples] == [(10.0, 10.0)] * 4
