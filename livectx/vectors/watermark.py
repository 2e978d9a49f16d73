"""Read-your-writes for the vector index: a per-partition watermark of searchable source offsets.

The embedding worker calls :meth:`IndexWatermark.advance` after a batch's vectors are committed to the
store, with the next offset it will read on each partition (Kafka's "position" convention): every record
below it on that partition is searchable, deleted, or in the dead-letter topic. A producer that holds the
offset of its own write asks :meth:`caught_up`, or blocks in :meth:`wait_for` with a deadline: the
article's "vector DB eventual consistency" made explicit, like Pinecone's write LSN.

The watermark lives in Redis (one hash per index, field ``<topic>:<partition>``), which every agent
already talks to, and only moves forward (a Lua max), so a restarted worker replaying old offsets never
moves it back.
"""

from __future__ import annotations

import time
from typing import Any

from livectx.errors import WatermarkTimeout

_ADVANCE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local proposed = tonumber(ARGV[2])
if proposed > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return proposed
end
return current
"""


class IndexWatermark:
    def __init__(self, redis_client: Any, index: str) -> None:
        self._redis = redis_client
        self.key = f"livectx:vector-watermark:{{{index}}}"
        self._advance = redis_client.register_script(_ADVANCE)

    def advance(self, positions: dict[tuple[str, int], int]) -> None:
        """Record that every offset below ``positions[(topic, partition)]`` is searchable."""
        for (topic, partition), next_offset in positions.items():
            self._advance(keys=[self.key], args=[f"{topic}:{partition}", next_offset])

    def position(self, topic: str, partition: int) -> int:
        """The next unsearched offset of a partition (0 when nothing is indexed yet)."""
        value = self._redis.hget(self.key, f"{topic}:{partition}")
        return int(value) if value is not None else 0

    def positions(self) -> dict[tuple[str, int], int]:
        out = {}
        for field, value in self._redis.hgetall(self.key).items():
            name = field.decode() if isinstance(field, bytes) else field
            if name.startswith("__"):
                continue
            topic, _, partition = name.rpartition(":")
            out[(topic, int(partition))] = int(value)
        return out

    def publish_status(self, lag_records: int | None, newest_event_ms: int | None, now_ms: int) -> None:
        """The worker's view of the index's freshness, read by ``get_context`` in one round trip."""
        mapping: dict[str, int] = {"__updated_ms": now_ms}
        if lag_records is not None:
            mapping["__lag_records"] = lag_records
        if newest_event_ms is not None:
            mapping["__newest_event_ms"] = newest_event_ms
        self._redis.hset(self.key, mapping=mapping)

    def status(self) -> dict[str, int | None]:
        """``lag_records`` (records not yet searchable), ``newest_event_ms``, ``updated_ms`` (or ``None``)."""
        raw = self._redis.hmget(self.key, ["__lag_records", "__newest_event_ms", "__updated_ms"])
        lag, newest, updated = (None if v is None else int(v) for v in raw)
        return {"lag_records": lag, "newest_event_ms": newest, "updated_ms": updated}

    def caught_up(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the record at ``offset`` is reflected in the index (searchable, or deleted)."""
        return self.position(topic, partition) > offset

    def wait_for(self, topic: str, partition: int, offset: int, timeout_s: float) -> float:
        """Block until ``offset`` is reflected; returns the seconds waited.

        Polls with a short back-off (1 ms doubling to 20 ms): a Redis HGET costs ~0.1 ms, so this finds the
        watermark within a few ms of the worker publishing it without a notification channel.

        Raises:
            WatermarkTimeout: the deadline passed (the worker is stopped, lagging, or failing).
        """
        started = time.monotonic()
        deadline = started + timeout_s
        pause = 0.001
        while True:
            position = self.position(topic, partition)
            if position > offset:
                return time.monotonic() - started
            now = time.monotonic()
            if now >= deadline:
                raise WatermarkTimeout(
                    f"vector index has not reached {topic}[{partition}]@{offset} after {timeout_s:g}s "
                    f"(searchable below offset {position}): is the embedding worker running? "
                    "`livectx ingest lag --group <its group>` shows its backlog"
                )
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.02)
