"""The engine's Kafka offset mirror (:mod:`livectx_ingest.streaming.mirror`), with a fake consumer and clock.

The refresh test is the one ``test_broker_chaos`` failed on: an asynchronous commit lost while the group
coordinator moved left the group's offsets behind for good once the worker had nothing new to commit."""

from __future__ import annotations

from typing import Any

from livectx_ingest.streaming.apply import Partition
from livectx_ingest.streaming.mirror import OffsetMirror

T = "payments"


class RecordingConsumer:
    """Records each commit as ``(asynchronous, [(topic, partition, offset), ...])``."""

    def __init__(self) -> None:
        self.commits: list[tuple[bool, list[tuple[str, int, int]]]] = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append((asynchronous, [(o.topic, o.partition, o.offset) for o in offsets]))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _owned(**committed: int | None) -> dict[tuple[str, int], Partition]:
    return {(T, int(p[1:])): Partition(epoch=1, next_offset=o, states={}, committed=o) for p, o in committed.items()}


def test_a_lost_commit_is_sent_again_once_the_refresh_interval_passes_with_nothing_new() -> None:
    consumer, clock = RecordingConsumer(), Clock()
    mirror = OffsetMirror(consumer, interval_s=0.1, refresh_s=2.0, clock=clock)
    owned = _owned(p0=10, p1=7)
    mirror.committed(owned)
    mirror.tick(everything=owned)
    assert consumer.commits == [(True, [(T, 0, 10), (T, 1, 7)])]  # this one the coordinator loses
    for _ in range(5):  # caught up: no checkpoint, nothing due; the loop keeps ticking
        clock.now += 0.3
        mirror.tick(everything=owned)
    assert len(consumer.commits) == 1  # within the refresh interval: no commit for nothing new
    clock.now += 0.6
    mirror.tick(everything=owned)
    assert consumer.commits[1:] == [(True, [(T, 0, 10), (T, 1, 7)])]  # every owned partition, again
    clock.now += 1.0
    mirror.tick(everything=owned)
    assert len(consumer.commits) == 2  # and then again only after another interval


def test_after_an_assignment_every_owned_partition_is_committed_at_once_and_waited_for() -> None:
    consumer, clock = RecordingConsumer(), Clock()
    mirror = OffsetMirror(consumer, clock=clock)
    mirror.pending = True
    mirror.tick(everything=_owned(p0=3, p1=None))  # p1: nothing stored yet, nothing to mirror
    assert consumer.commits == [(False, [(T, 0, 3)])]
    clock.now += 1.0
    mirror.tick(everything=_owned(p0=3))
    assert len(consumer.commits) == 1  # the assignment's commit counts as the refresh


def test_nothing_is_committed_when_no_partition_has_an_offset() -> None:
    consumer, clock = RecordingConsumer(), Clock()
    mirror = OffsetMirror(consumer, clock=clock)
    clock.now += 10.0
    mirror.tick(everything=_owned(p0=None))
    mirror.tick(everything={})
    assert consumer.commits == []


def test_a_final_tick_mirrors_what_is_due_synchronously() -> None:
    consumer, clock = RecordingConsumer(), Clock()
    mirror = OffsetMirror(consumer, interval_s=60.0, clock=clock)
    mirror.committed(_owned(p2=5))
    mirror.tick(final=True)
    assert consumer.commits == [(False, [(T, 2, 5)])]
