"""The feature engine's hold on partitions while the schema registry does not answer.

A registry outage is nobody's data problem, so records it stops are *held*, not dead-lettered: the
partitions they belong to are paused on the consumer (the group still sees the worker alive, and the
other partitions keep going), and the held records are retried after a growing, bounded wait
(:class:`~livectx.wire.RegistryPause`). This part owns that state (which partitions are paused, how long
to wait before the retry), so the engine's loop only asks whether a retry is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livectx.wire import RegistryPause
from livectx_ingest.streaming.checkpoint import PartitionId


class RegistryHold:
    """Partitions paused for the registry and the wait before their held records are retried.

    ``consumer`` may lack ``pause``/``resume`` (a cold-tier replay): then nothing is paused on it and the
    engine does not read it while records are held."""

    def __init__(self, consumer: Any, pause: RegistryPause) -> None:
        self._consumer = consumer
        self._pause = pause
        #: > 0: records are held for the registry; wait this long, then retry them.
        self.wait_s = 0.0
        #: Partitions paused on the consumer meanwhile.
        self.paused: set[PartitionId] = set()

    def hold(self, held_at: Mapping[PartitionId, int], reason: str) -> None:
        """After a batch: pause the partitions whose records are held (``held_at``: each one's first held
        offset), resume the others, and schedule the retry (none when nothing is held)."""
        self.resume(self.paused - held_at.keys())
        if not held_at:
            self._pause.resumed()
            return
        where = ", ".join(f"{t}[{p}]@{offset}" for (t, p), offset in sorted(held_at.items()))
        self.wait_s = self._pause.wait_s(reason, where)
        new = held_at.keys() - self.paused
        if new and hasattr(self._consumer, "pause"):
            from confluent_kafka import TopicPartition

            self._consumer.pause([TopicPartition(t, p) for t, p in new])
        self.paused |= new

    def resume(self, tps: set[PartitionId]) -> None:
        """Resume ``tps`` on the consumer and stop counting them as paused."""
        if tps and hasattr(self._consumer, "resume"):
            from confluent_kafka import TopicPartition

            self._consumer.resume([TopicPartition(t, p) for t, p in tps])
        self.paused -= tps

    def resume_all(self) -> None:
        """Resume every paused partition (their held records are dropped and re-read after a seek)."""
        self.resume(set(self.paused))

    def forget(self, *, cancel_retry: bool) -> None:
        """The assignment changed: Kafka unpauses by itself, so forget the paused set; ``cancel_retry`` too
        on a new assignment (it starts unpaused and re-reads from its offsets)."""
        self.paused.clear()
        if cancel_retry:
            self.wait_s = 0.0
