"""The late-events topic: events too late for every window they belong to are kept, with why, not dropped."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from livectx.dead_letter import SideOutput, source_headers
from livectx.prometheus import LATE_EVENTS

LATE_GROUP = "livectx.late.group"
LATE_WINDOW = "livectx.late.window"
LATE_BY_MS = "livectx.late.by_ms"


class LateEvents(SideOutput):
    """Copies a late event (its original bytes) to the late-events topic once per feature group, with the
    group, the window it missed, how late it was and where it came from in headers. The engine flushes this
    before committing the event's offset, so none is lost; after a crash a re-processed range may report an
    event again (consumers key by source topic-partition-offset)."""

    def __init__(self, producer: Any, topic: str) -> None:
        super().__init__(producer, topic, "late-events topic")
        self.counts: dict[str, int] = defaultdict(int)

    def publish(self, message: Any, group: str, window: tuple[int, int], late_by_ms: int) -> None:
        self.counts[group] += 1
        LATE_EVENTS.labels(group).inc()
        headers = [
            (LATE_GROUP, group.encode()),
            (LATE_WINDOW, f"{window[0]}-{window[1]}".encode()),
            (LATE_BY_MS, str(late_by_ms).encode()),
            *source_headers(message),
        ]
        self._copy(message, headers)
