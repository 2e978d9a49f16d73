"""Where the archiver stands in each partition: where its next file starts, and what Kafka holds as
committed for it.

The committed offset is only ever the end of a file already listed in the manifest (or of transaction
markers after one), so a restart resumes at ``max(committed offset, archived end)`` and never writes a
range twice (:meth:`PartitionLedger.resume`). A file starts where the previous one ended unless the broker
dropped the records in between first: that is a gap, recorded and logged, never papered over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from livectx.consuming import PartitionId, assigned_lag

if TYPE_CHECKING:
    from confluent_kafka import TopicPartition

log = logging.getLogger(__name__)

#: A gap: topic, partition, [from, to) offsets that expired before they were archived.
Gap = tuple[str, int, int, int]


class PartitionLedger:
    """Per partition: ``next`` (where the next file starts) and ``committed`` (Kafka's committed offset)."""

    def __init__(self, consumer: Any, gaps: list[Gap]) -> None:
        self._consumer = consumer
        self._gaps = gaps  # appended to: the run's stats show them
        self.next: dict[PartitionId, int] = {}
        self.committed: dict[PartitionId, int] = {}

    def resume(self, committed: list[TopicPartition], archived_end: Callable[[str], dict[int, int]]) -> None:
        """Set each assigned partition's start (``tp.offset``) to max(committed offset, archived end), or
        the beginning when neither is known: a file listed just before a crash (offsets not yet committed)
        is never written twice. ``archived_end(topic)``: the manifest's next offset per partition."""
        from confluent_kafka import OFFSET_BEGINNING

        archived: dict[str, dict[int, int]] = {}
        for tp in committed:
            if tp.topic not in archived:
                archived[tp.topic] = archived_end(tp.topic)
            known = [o for o in (tp.offset, archived[tp.topic].get(tp.partition, -1)) if o >= 0]
            position = (tp.topic, tp.partition)
            if known:
                tp.offset = max(known)
                self.next[position] = tp.offset
            else:
                tp.offset = OFFSET_BEGINNING
                self.next[position] = 0

    def start_of_new_file(self, position: PartitionId, first_offset: int) -> int:
        """The log position a new file accounts from: where the previous one ended, unless the broker
        dropped the records in between before they were archived (then that is a gap, and it shows)."""
        from confluent_kafka import TopicPartition

        expected = self.next.get(position, 0)
        if first_offset <= expected:
            return first_offset
        low, _high = self._consumer.get_watermark_offsets(TopicPartition(*position), timeout=10, cached=False)
        if low > expected:
            topic, partition = position
            log.error(
                "GAP: %s[%d] offsets %d..%d expired before they were archived (the broker starts at %d)",
                topic, partition, expected, low - 1, low,
            )  # fmt: skip
            self._gaps.append((topic, partition, expected, low))
            return low
        return expected  # the positions in between are transaction markers or aborted records

    def commit(self, position: PartitionId, offset: int) -> None:
        """Commit ``offset`` to Kafka, synchronously (only after what precedes it is listed)."""
        from confluent_kafka import TopicPartition

        self._consumer.commit(offsets=[TopicPartition(position[0], position[1], offset)], asynchronous=False)
        self.committed[position] = offset

    def lag(self) -> int | None:
        return assigned_lag(self._consumer, self.committed)
