"""Where the archiver stands per partition (:class:`PartitionLedger`): a restart resumes at the later of
Kafka's committed offset and the archive's end (never writing a range twice), a new file starts where the
last one ended, expired offsets become a recorded gap, and commits are recorded as made."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, TopicPartition
from livectx_ingest.archive.ledger import Gap, PartitionLedger

T = "payments"


class Broker:
    """The consumer calls the ledger makes: watermarks (the log starts at ``low``) and commits."""

    def __init__(self, low: int = 0) -> None:
        self.low = low
        self.commits: list[tuple[str, int, int, bool]] = []

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        return self.low, 10_000

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits += [(o.topic, o.partition, o.offset, asynchronous) for o in offsets]


def test_resume_at_the_later_of_committed_and_archived_else_the_beginning() -> None:
    ledger = PartitionLedger(Broker(), [])
    tps = [TopicPartition(T, 0, 100), TopicPartition(T, 1, 500), TopicPartition(T, 2, OFFSET_INVALID)]
    asked: list[str] = []

    def archived_end(topic: str) -> dict[int, int]:
        asked.append(topic)
        return {0: 300, 1: 200}  # partition 0: a file listed before the crash, its offset not committed

    ledger.resume(tps, archived_end)
    assert [tp.offset for tp in tps] == [300, 500, OFFSET_BEGINNING]
    assert ledger.next == {(T, 0): 300, (T, 1): 500, (T, 2): 0}
    assert asked == [T]  # the manifest is read once per topic


def test_a_new_file_starts_where_the_last_ended_or_at_its_first_record_when_earlier() -> None:
    ledger = PartitionLedger(Broker(low=0), [])
    ledger.next[(T, 0)] = 100
    assert ledger.start_of_new_file((T, 0), 100) == 100
    assert ledger.start_of_new_file((T, 0), 90) == 90
    assert ledger.start_of_new_file((T, 0), 105) == 100  # 100..104: transaction markers, covered


def test_offsets_expired_before_they_were_archived_are_a_recorded_gap() -> None:
    gaps: list[Gap] = []
    ledger = PartitionLedger(Broker(low=300), gaps)
    ledger.next[(T, 1)] = 120
    assert ledger.start_of_new_file((T, 1), 305) == 300
    assert gaps == [(T, 1, 120, 300)]


def test_commits_are_synchronous_and_recorded() -> None:
    broker = Broker()
    ledger = PartitionLedger(broker, [])
    ledger.commit((T, 0), 42)
    assert broker.commits == [(T, 0, 42, False)] and ledger.committed == {(T, 0): 42}
