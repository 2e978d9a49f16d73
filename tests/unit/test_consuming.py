"""The consume-loop toolkit every worker and agent shares (livectx.consuming), with fake Kafka clients."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field

import pytest
from confluent_kafka import TopicPartition

from livectx.consuming import CaughtUp, GroupLag, assigned_lag, is_record
from livectx.errors import LivectxError


@dataclass
class FakeError:
    text: str
    is_fatal: bool = False

    def fatal(self) -> bool:
        return self.is_fatal

    def __str__(self) -> str:
        return self.text


@dataclass
class FakeMessage:
    problem: FakeError | None = None

    def error(self) -> FakeError | None:
        return self.problem


def test_a_record_is_taken_a_retriable_error_skipped_and_logged_a_fatal_one_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.consuming")
    assert is_record(FakeMessage(), log)
    with caplog.at_level(logging.WARNING, logger="test.consuming"):
        assert not is_record(FakeMessage(FakeError("broker down")), log)
    assert "consumer error (retriable): broker down" in caplog.text
    with pytest.raises(LivectxError, match="Kafka consumer failed: fenced"):
        is_record(FakeMessage(FakeError("fenced", is_fatal=True)), log)


@dataclass
class FakeAdmin:
    """Answers list_consumer_group_offsets with what ``committed`` holds now, and counts the calls."""

    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: int = 0

    def list_consumer_group_offsets(self, requests: list) -> dict:  # type: ignore[type-arg]
        self.calls += 1
        group = requests[0].group_id
        result = type("Result", (), {})()
        result.topic_partitions = [TopicPartition(t, p, o) for (t, p), o in self.committed.items()]
        future: Future = Future()  # type: ignore[type-arg]
        future.set_result(result)
        return {group: future}


def test_caught_up_means_every_target_committed_and_asks_once_per_interval() -> None:
    now = [100.0]
    admin = FakeAdmin()
    probe = CaughtUp("g", {("t", 0): 5, ("t", 1): 0}, admin, interval_s=0.5, clock=lambda: now[0])
    assert not probe.reached()  # nothing committed; partition 1 is empty, so it needs nothing
    admin.committed = {("t", 0): 5}
    assert not probe.reached() and admin.calls == 1  # within the interval: no round trip
    now[0] += 0.5
    assert probe.reached() and admin.calls == 2
    admin.committed = {("t", 0): 4}
    assert not probe.reached_now()  # unthrottled, and short of the target again


def test_caught_up_is_not_reached_while_the_group_does_not_exist_yet() -> None:
    class Missing(FakeAdmin):
        def list_consumer_group_offsets(self, requests: list) -> dict:  # type: ignore[type-arg]
            future: Future = Future()  # type: ignore[type-arg]
            future.set_exception(RuntimeError("GROUP_ID_NOT_FOUND"))
            return {requests[0].group_id: future}

    assert not CaughtUp("g", {("t", 0): 1}, Missing()).reached_now()


@dataclass
class FakeConsumer:
    high: dict[tuple[str, int], int]
    closed: bool = False

    def assignment(self) -> list[TopicPartition]:
        if self.closed:
            raise RuntimeError("Consumer closed")
        return [TopicPartition(t, p) for t, p in self.high]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        return 0, self.high[(tp.topic, tp.partition)]

    def list_topics(self, timeout: float = 0) -> object:
        partitions: dict[str, dict[int, None]] = {}
        for t, p in self.high:
            partitions.setdefault(t, {})[p] = None
        topics = {t: type("T", (), {"partitions": ps})() for t, ps in partitions.items()}
        return type("M", (), {"topics": topics})()

    def close(self) -> None:
        self.closed = True


def test_assigned_lag_counts_past_what_was_committed_and_is_unknown_before_any_commit() -> None:
    consumer = FakeConsumer({("t", 0): 10, ("t", 1): 7, ("t", 2): -1})
    assert assigned_lag(consumer, {}) is None
    assert assigned_lag(consumer, {("t", 0): 4, ("t", 2): 3}) == 6  # an unknown high watermark counts nothing
    assert assigned_lag(consumer, {("t", 0): 12}) == 0  # never negative
    consumer.closed = True
    assert assigned_lag(consumer, {("t", 0): 4}) is None


def test_group_lag_reuses_its_clients_and_closes_the_probe() -> None:
    admin = FakeAdmin({("t", 0): 4, ("t", 1): 7})
    probe = FakeConsumer({("t", 0): 10, ("t", 1): 7})
    lag = GroupLag(admin=admin, probe=probe)
    assert lag.rows("g") == [("t", 0, 4, 10), ("t", 1, 7, 7)]
    assert lag.rows("g") == [("t", 0, 4, 10), ("t", 1, 7, 7)] and admin.calls == 2
    lag.close()
    assert probe.closed


def test_group_lag_of_a_group_that_committed_nothing_asks_no_watermarks() -> None:
    lag = GroupLag(admin=FakeAdmin())
    assert lag.rows("g") == []  # no probe consumer was needed (none injected, and no settings to make one)
