"""The late-events topic: events too late for every window they belong to are kept, with why, not dropped."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from livectx import dead_letter
from livectx.errors import LivectxError

LATE_GROUP = "livectx.late.group"
LATE_WINDOW = "livectx.late.window"
LATE_BY_MS = "livectx.late.by_ms"


class LateEvents:
    """Copies a late event (its original bytes) to the late-events topic once per feature group, with the
    group, the window it missed, how late it was and where it came from in headers. The engine flushes this
    before committing the event's offset, so none is lost; after a crash a re-processed range may report an
    event again (consumers key by source topic-partition-offset)."""

    def __init__(self, producer: Any, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self.counts: dict[str, int] = defaultdict(int)
        self._errors: list[str] = []

    def publish(self, message: Any, group: str, window: tuple[int, int], late_by_ms: int) -> None:
        self.counts[group] += 1
        self._producer.produce(
            self.topic,
            key=message.key(),
            value=message.value(),
            headers=[
                (LATE_GROUP, group.encode()),
                (LATE_WINDOW, f"{window[0]}-{window[1]}".encode()),
                (LATE_BY_MS, str(late_by_ms).encode()),
                (dead_letter.SOURCE_TOPIC, message.topic().encode()),
                (dead_letter.SOURCE_PARTITION, str(message.partition()).encode()),
                (dead_letter.SOURCE_OFFSET, str(message.offset()).encode()),
            ],
            on_delivery=self._on_delivery,
        )

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            raise LivectxError(f"late-events topic {self.topic} did not take {remaining} records: {self._errors[:3]}")

    def _on_delivery(self, err: object, _msg: object) -> None:
        if err is not None:
            self._errors.append(str(err))
