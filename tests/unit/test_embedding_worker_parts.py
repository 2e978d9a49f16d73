"""The embedding worker's commit order and backpressure, part by part, with fakes (no Kafka, Redis or store)."""

from __future__ import annotations

from typing import Any

from livectx_ingest.embeddings.backpressure import Backpressure
from livectx_ingest.embeddings.batches import EmbeddingStats, WriteJob
from livectx_ingest.embeddings.commits import CommitLedger, Committer

T = "docs"


class FakeConsumer:
    """Records commits, pauses and resumes; two partitions assigned."""

    def __init__(self) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []
        self.paused: list[tuple[str, int]] = []
        self.resumed: list[tuple[str, int]] = []
        self.assigned = [_TP(T, 0), _TP(T, 1)]

    def commit(self, *, offsets: list[Any], asynchronous: bool) -> None:
        assert not asynchronous
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def assignment(self) -> list[Any]:
        return list(self.assigned)

    def get_watermark_offsets(self, partition: Any, cached: bool = False) -> tuple[int, int]:
        return 0, 100

    def pause(self, partitions: list[Any]) -> None:
        self.paused.extend((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[Any]) -> None:
        self.resumed.extend((tp.topic, tp.partition) for tp in partitions)


class _TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


class FakeDeadLetters:
    def __init__(self) -> None:
        self.flushes = 0

    def publish(self, message: Any, reason: str) -> None:
        raise AssertionError("no dead letters here")

    def flush(self) -> None:
        self.flushes += 1


class FakeWatermark:
    def __init__(self) -> None:
        self.statuses: list[int | None] = []

    def advance(self, positions: dict[tuple[str, int], int]) -> None:
        pass

    def publish_status(self, lag_records: int | None, newest_event_ms: int | None, now_ms: int) -> None:
        self.statuses.append(lag_records)


def job(seq: int, positions: dict[tuple[str, int], int]) -> WriteJob:
    return WriteJob(records=[], deletes=[], positions=positions, timestamps_ms=[], seq=seq)


def test_commits_follow_offset_order_per_partition_when_batches_finish_out_of_order() -> None:
    consumer, dead_letters, watermark = FakeConsumer(), FakeDeadLetters(), FakeWatermark()
    ledger = CommitLedger()
    committer = Committer(consumer, dead_letters, watermark, ledger, EmbeddingStats())
    # Three batches taken in this order; each covers the next offsets of both partitions.
    batches = [
        job(ledger.begin(), {(T, 0): 10, (T, 1): 5}),
        job(ledger.begin(), {(T, 0): 20, (T, 1): 9}),
        job(ledger.begin(), {(T, 0): 30, (T, 1): 12}),
    ]
    assert ledger.in_flight == 3

    ledger.finish(batches[2])  # the newest batch is written first: committing it would skip 0 and 1
    assert committer.commit_ready() == 0
    assert consumer.commits == []
    ledger.finish(batches[0])
    assert committer.commit_ready() == 1
    assert consumer.commits == [{(T, 0): 10, (T, 1): 5}]  # batch 0 only: batch 1 is not in the store yet
    ledger.finish(batches[1])
    assert committer.commit_ready() == 2
    assert consumer.commits == [{(T, 0): 10, (T, 1): 5}, {(T, 0): 30, (T, 1): 12}]

    for partition in (0, 1):  # never backwards, never past an unwritten batch
        offsets = [c[(T, partition)] for c in consumer.commits]
        assert offsets == sorted(offsets)
    assert ledger.in_flight == 0 and ledger.committed == {(T, 0): 30, (T, 1): 12}
    assert dead_letters.flushes == 2  # dead letters acknowledged before each commit
    assert watermark.statuses == [(100 - 10) + (100 - 5), (100 - 30) + (100 - 12)]


def test_the_ledger_waits_for_the_oldest_batch() -> None:
    ledger = CommitLedger()
    first, second = ledger.begin(), ledger.begin()
    ledger.finish(job(second, {(T, 0): 2}))
    assert ledger.ready(wait_s=0.05) == []  # waited, and still may not hand out the second alone
    ledger.finish(job(first, {(T, 0): 1}))
    assert [j.seq for j in ledger.ready()] == [first, second]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backpressure_pauses_when_the_batch_stays_full_and_resumes_after() -> None:
    consumer, clock = FakeConsumer(), Clock()
    pauses: list[float] = []
    backpressure = Backpressure(consumer, on_pause=lambda: pauses.append(clock.now), stall_s=1.0, clock=clock)

    assert backpressure.admit(room=8) == (8, 0.05)  # room: poll for it
    assert backpressure.admit(room=0) is None  # full while the model works: normal, no poll, no pause
    clock.now = 0.9
    assert backpressure.admit(room=0) is None and not backpressure.paused and consumer.paused == []

    clock.now = 1.5  # still full after the stall time: pause, but keep polling (the group sees us alive)
    assert backpressure.admit(room=0) == (1, 0.0)
    assert backpressure.paused and consumer.paused == [(T, 0), (T, 1)] and pauses == [1.5]
    clock.now = 9.0
    assert backpressure.admit(room=0) == (1, 0.0)
    assert consumer.paused == [(T, 0), (T, 1)] and pauses == [1.5]  # paused once, not per round

    assert backpressure.admit(room=3) == (3, 0.05)  # the batch was taken: resume by itself
    assert not backpressure.paused and consumer.resumed == [(T, 0), (T, 1)]

    clock.now = 9.5  # a new stall counts from its own start
    assert backpressure.admit(room=0) is None
    clock.now = 10.0
    assert backpressure.admit(room=0) is None and not backpressure.paused


def test_a_revoke_forgets_the_pause_of_partitions_that_are_gone() -> None:
    consumer, clock = FakeConsumer(), Clock()
    backpressure = Backpressure(consumer, clock=clock)
    backpressure.admit(room=0)
    clock.now = 2.0
    backpressure.admit(room=0)
    assert backpressure.paused
    backpressure.revoked()
    consumer.assigned = [_TP(T, 1)]
    assert backpressure.admit(room=4) == (4, 0.05)
    assert consumer.resumed == []  # nothing to resume: the new assignment was never paused
