"""The consume-loop toolkit every worker and agent shares (livectx.consuming), with fake Kafka clients."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from confluent_kafka import TopicPartition

from livectx.consuming import CaughtUp, GroupLag, assigned_lag, is_record
from livectx.errors import LivectxError
from livectx.offsets import GroupCommits


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
class FakeGroupConsumer:
    """A consumer carrying a group's id: answers ``committed`` with what ``offsets`` holds now (-1001, as
    librdkafka does, for a partition never committed), topic metadata and watermarks from ``high``, and
    counts the reads."""

    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    high: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: int = 0
    closed: bool = False

    def committed(self, partitions: list[TopicPartition], timeout: float = 0) -> list[TopicPartition]:
        self.calls += 1
        return [
            TopicPartition(tp.topic, tp.partition, self.offsets.get((tp.topic, tp.partition), -1001))
            for tp in partitions
        ]

    def list_topics(self, timeout: float = 0) -> object:
        return FakeConsumer(self.high).list_topics()

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        return 0, self.high[(tp.topic, tp.partition)]

    def close(self) -> None:
        self.closed = True


def test_caught_up_means_every_target_committed_and_asks_once_per_interval() -> None:
    now = [100.0]
    group = FakeGroupConsumer()
    probe = CaughtUp("g", {("t", 0): 5, ("t", 1): 0}, GroupCommits(group), interval_s=0.5, clock=lambda: now[0])
    assert not probe.reached()  # nothing committed; partition 1 is empty, so it needs nothing
    group.offsets = {("t", 0): 5}
    assert not probe.reached() and group.calls == 1  # within the interval: no round trip
    now[0] += 0.5
    assert probe.reached() and group.calls == 2
    group.offsets = {("t", 0): 4}
    assert not probe.reached_now()  # unthrottled, and short of the target again
    probe.close()
    assert group.closed


def test_caught_up_is_not_reached_while_the_offsets_cannot_be_read() -> None:
    class Unreachable(FakeGroupConsumer):
        def committed(self, partitions: list[TopicPartition], timeout: float = 0) -> list[TopicPartition]:
            raise RuntimeError("KafkaError{code=_TIMED_OUT}")

    assert not CaughtUp("g", {("t", 0): 1}, GroupCommits(Unreachable())).reached_now()


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


def test_group_lag_reuses_one_reader_per_group_and_closes_it() -> None:
    group = FakeGroupConsumer({("t", 0): 4, ("t", 1): 7}, {("t", 0): 10, ("t", 1): 7, ("u", 0): 3})
    opened: list[str] = []

    def open_group(name: str) -> GroupCommits:
        opened.append(name)
        return GroupCommits(group)

    lag = GroupLag(open_group=open_group)
    assert lag.rows("g") == [("t", 0, 4, 10), ("t", 1, 7, 7)]  # "u" was never committed: no row
    assert lag.rows("g") == [("t", 0, 4, 10), ("t", 1, 7, 7)] and group.calls == 2 and opened == ["g"]
    lag.close()
    assert group.closed


def test_group_lag_asks_only_for_the_topics_it_was_given() -> None:
    group = FakeGroupConsumer({("t", 0): 4, ("u", 0): 1}, {("t", 0): 10, ("u", 0): 3})
    lag = GroupLag(topics=["u", "gone"], open_group=lambda _name: GroupCommits(group))
    assert lag.rows("g") == [("u", 0, 1, 3)]  # a topic the broker does not have is no row, not an error


def test_group_lag_closes_the_readers_of_groups_no_longer_listed() -> None:
    readers = {name: FakeGroupConsumer() for name in ("a", "b")}
    lag = GroupLag(open_group=lambda name: GroupCommits(readers[name]))
    lag.commits("a"), lag.commits("b")
    lag.keep_only(["b"])
    assert readers["a"].closed and not readers["b"].closed


def test_group_lag_of_a_group_that_committed_nothing_is_no_rows() -> None:
    group = FakeGroupConsumer({}, {("t", 0): 10})
    assert GroupLag(open_group=lambda _name: GroupCommits(group)).rows("g") == []


def test_group_lag_without_settings_or_a_reader_says_so() -> None:
    with pytest.raises(ValueError, match="needs settings"):
        GroupLag().rows("g")
