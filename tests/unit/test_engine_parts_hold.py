"""The engine's hold on partitions while the schema registry does not answer (:class:`RegistryHold`):
held partitions are paused on the consumer, the wait before a retry grows (bounded), partitions that
decode again are resumed, and an assignment change forgets the pause."""

from __future__ import annotations

import logging
from typing import Any

from livectx_ingest.streaming.hold import RegistryHold

from livectx.wire import RegistryPause

T = "payments"


class PausingConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, int]]]] = []

    def pause(self, partitions: list[Any]) -> None:
        self.calls.append(("pause", sorted((p.topic, p.partition) for p in partitions)))

    def resume(self, partitions: list[Any]) -> None:
        self.calls.append(("resume", sorted((p.topic, p.partition) for p in partitions)))


def _hold(consumer: Any) -> RegistryHold:
    pause = RegistryPause(logging.getLogger("test"), first_s=0.1, max_s=0.4, clock=lambda: 0.0)
    return RegistryHold(consumer, pause)


def test_held_partitions_are_paused_once_and_the_wait_grows_to_its_bound() -> None:
    consumer = PausingConsumer()
    hold = _hold(consumer)
    waits = []
    for _ in range(4):
        hold.hold({(T, 0): 10, (T, 2): 7}, "registry down")
        waits.append(hold.wait_s)
    assert waits == [0.1, 0.2, 0.4, 0.4]
    assert hold.paused == {(T, 0), (T, 2)}
    assert consumer.calls == [("pause", [(T, 0), (T, 2)])]  # not paused again while held


def test_partitions_that_decode_again_are_resumed_and_the_others_stay_paused() -> None:
    consumer = PausingConsumer()
    hold = _hold(consumer)
    hold.hold({(T, 0): 10, (T, 1): 3}, "registry down")
    hold.hold({(T, 1): 3}, "registry down")  # partition 0 went through
    assert hold.paused == {(T, 1)} and consumer.calls[-1] == ("resume", [(T, 0)])
    hold.hold({}, "")  # everything decodes: all resumed, the pause ends (the next one starts small)
    assert hold.paused == set() and consumer.calls[-1] == ("resume", [(T, 1)])
    hold.hold({(T, 1): 3}, "registry down")
    assert hold.wait_s == 0.1


def test_resume_all_resumes_every_paused_partition() -> None:
    consumer = PausingConsumer()
    hold = _hold(consumer)
    hold.hold({(T, 0): 1, (T, 1): 1}, "registry down")
    hold.resume_all()
    assert hold.paused == set() and consumer.calls[-1] == ("resume", [(T, 0), (T, 1)])


def test_an_assignment_change_forgets_the_paused_set_and_a_new_assignment_the_retry() -> None:
    hold = _hold(PausingConsumer())
    hold.hold({(T, 0): 1}, "registry down")
    hold.forget(cancel_retry=False)  # revoked: Kafka unpauses by itself; the retry still runs
    assert hold.paused == set() and hold.wait_s == 0.1
    hold.hold({(T, 0): 1}, "registry down")
    hold.forget(cancel_retry=True)  # assigned: starts unpaused, nothing to retry
    assert hold.paused == set() and hold.wait_s == 0.0


def test_a_consumer_that_cannot_pause_is_left_alone_but_the_retry_is_scheduled() -> None:
    hold = _hold(object())  # a cold-tier replay: no pause/resume
    hold.hold({(T, 0): 1}, "registry down")
    assert hold.paused == {(T, 0)} and hold.wait_s == 0.1
    hold.hold({}, "")
    assert hold.paused == set()
