"""Exactly-once checkpoints in the online store itself: window state, online rows and input offsets in one
Redis transaction, fenced per partition.

Why not Kafka transactions: the engine's output *is* Redis (Feast's online store), and a Kafka transaction
cannot include a Redis write. Committing the consumed offsets in the same ``MULTI``/``EXEC`` as the rows and
the state they produced makes the three move together: after a crash the worker resumes from the offsets
stored beside the state, so an event is counted exactly once whatever the moment of the crash. (This is
the "store offsets with the output" pattern of exactly-once sinks; Kafka's committed offsets are written
afterwards for lag monitoring only.)

Fencing: assigning a partition ``INCR``s its epoch; a commit ``WATCH``es the epochs of the partitions it
touches and aborts if any changed, so a worker that lost a partition in a rebalance (or a paused zombie)
can never overwrite its successor's state.

Keys (one consumer group's): ``livectx:engine:<group>:epoch:<topic>:<p>``, ``...:offsets`` (hash
``<topic>:<p>`` -> next offset) and ``...:state:<topic>:<p>`` (hash ``<feature group>\\x1f<entity>`` -> state).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from livectx.errors import LivectxError
from livectx_ingest.streaming.resp import RawTransaction, bulk, hset

TopicPartition = tuple[str, int]
FIELD_SEP = "\x1f"


class FencedError(LivectxError):
    """Another worker took over one of our partitions: our uncommitted work must be dropped."""


class RedisCheckpoints:
    def __init__(self, client: Any, consumer_group: str) -> None:
        self._client = client
        self.prefix = f"livectx:engine:{consumer_group}"
        self._offsets_key = f"{self.prefix}:offsets"

    def _epoch_key(self, tp: TopicPartition) -> str:
        return f"{self.prefix}:epoch:{tp[0]}:{tp[1]}"

    def state_key(self, tp: TopicPartition) -> str:
        return f"{self.prefix}:state:{tp[0]}:{tp[1]}"

    def claim(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Take ownership of ``tps``: bump their epochs (fencing out any previous owner) and return ours."""
        pipe = self._client.pipeline(transaction=True)
        for tp in tps:
            pipe.incr(self._epoch_key(tp))
        return dict(zip(tps, (int(e) for e in pipe.execute()), strict=True))

    def offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The next offset to process per partition, as of the last commit (``None``: never committed)."""
        if not tps:
            return {}
        raw = self._client.hmget(self._offsets_key, [f"{t}:{p}" for t, p in tps])
        return {tp: None if v is None else int(v) for tp, v in zip(tps, raw, strict=True)}

    def state(self, tp: TopicPartition) -> Iterator[tuple[str, str, bytes]]:
        """``(feature group, entity, state)`` for every entity of the partition, streamed in chunks."""
        for field, value in self._client.hscan_iter(self.state_key(tp), count=5_000):
            group, _, entity = field.decode().partition(FIELD_SEP)
            yield group, entity, value

    def commit(
        self,
        epochs: Mapping[TopicPartition, int],
        offsets: Mapping[TopicPartition, int],
        state: Mapping[TopicPartition, dict[str, bytes]],
        rows: list[bytes],
        *,
        fenced: bool = True,
    ) -> None:
        """Write ``rows`` (RESP commands), state and offsets atomically.

        Raises:
            FencedError: an epoch changed (fenced) — nothing was written.
        """
        commands = list(rows)
        for tp, fields in state.items():
            if fields:
                pairs = [bulk(k.encode()) + bulk(v) for k, v in fields.items()]
                commands.append(hset(self.state_key(tp).encode(), pairs, len(pairs)))
        if offsets:
            pairs = [bulk(f"{t}:{p}".encode()) + bulk(b"%d" % o) for (t, p), o in offsets.items()]
            commands.append(hset(self._offsets_key.encode(), pairs, len(pairs)))
        with RawTransaction(self._client) as tx:
            if not fenced:
                tx.execute(commands, atomic=False)
                return
            epoch_keys = [self._epoch_key(tp) for tp in epochs]
            current = tx.watch(epoch_keys)
            lost = [tp for tp, v in zip(epochs, current, strict=True) if v is None or int(v) != epochs[tp]]
            if lost:
                tx.unwatch()
                raise FencedError(f"partitions {lost} were taken over by another worker")
            if tx.execute(commands) is None:
                raise FencedError("a partition epoch changed during the commit")
