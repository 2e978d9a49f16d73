"""Fakes for driving the feature engine's real loop without services: a scripted consumer (assignments,
revocations and record batches in a set order) and an in-memory checkpoint store with the real commit
rules (:func:`~livectx_ingest.streaming.checkpoint.verify`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from livectx_ingest.streaming.checkpoint import FIELD_SEP, PartitionId, raise_for, verify

from livectx import serde


@dataclass
class Record:
    """What the engine reads of a confluent_kafka Message."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _headers: list[tuple[str, bytes]] | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)

    def error(self) -> None:
        return None


def records(topic: str, partition: int, events: list[Any], first_offset: int = 0) -> list[Record]:
    out = []
    for n, event in enumerate(events):
        key, value, headers = serde.encode(event)
        out.append(Record(topic, partition, first_offset + n, key, value, headers))
    return out


class SideOutputs:
    """Dead letters and late events: kept, always acknowledged."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, ...]] = []

    def publish(self, *args: Any) -> None:
        self.published.append(args)

    def flush(self, timeout_s: float = 30.0) -> None:
        return None


class ScriptedConsumer:
    """Plays ``script`` one step per ``consume`` call: ``("assign", [(topic, p), ...])``, ``("revoke", [...])``,
    ``("records", [Record, ...])`` or ``("do", callable)``; then stops the engine. Records seeks and commits."""

    def __init__(self, script: list[tuple[str, Any]]) -> None:
        self.script = list(script)
        self.engine: Any = None
        self.seeks: list[tuple[str, int, int]] = []
        self.assigned: list[tuple[str, int]] = []
        self.kafka_commits: list[list[tuple[str, int, int]]] = []
        self._on_assign: Callable[..., None] | None = None
        self._on_revoke: Callable[..., None] | None = None

    def subscribe(self, topics: list[str], on_assign: Callable[..., None], on_revoke: Callable[..., None]) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        from confluent_kafka import TopicPartition

        if not self.script:
            self.engine.stop()
            return []
        kind, arg = self.script.pop(0)
        if kind == "assign":
            self._on_assign(self, [TopicPartition(t, p) for t, p in arg])  # type: ignore[misc]
        elif kind == "revoke":
            self._on_revoke(self, [TopicPartition(t, p) for t, p in arg])  # type: ignore[misc]
        elif kind == "do":
            arg()
        else:
            return list(arg)
        return []

    def assign(self, partitions: list[Any]) -> None:
        self.assigned = [(p.topic, p.partition) for p in partitions]

    def unassign(self) -> None:
        self.assigned = []

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def pause(self, partitions: list[Any]) -> None:
        return None

    def resume(self, partitions: list[Any]) -> None:
        return None

    def position(self, partitions: list[Any]) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(p.topic, p.partition, -1) for p in partitions]

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        return (-1, -1)

    def commit(self, offsets: list[Any], asynchronous: bool = True) -> None:
        self.kafka_commits.append([(o.topic, o.partition, o.offset) for o in offsets])

    def close(self) -> None:
        return None


@dataclass
class MemoryCheckpoints:
    """A checkpoint store in memory, with the commit rules of the Redis ones (epoch fence, offset check)."""

    prefix: str = "memory"
    epochs: dict[PartitionId, int] = field(default_factory=dict)
    stored_offsets: dict[PartitionId, int] = field(default_factory=dict)
    states: dict[PartitionId, dict[str, bytes]] = field(default_factory=dict)
    commits: int = 0

    def claim(self, tps: list[PartitionId]) -> dict[PartitionId, int]:
        for tp in tps:
            self.epochs[tp] = self.epochs.get(tp, 0) + 1
        return {tp: self.epochs[tp] for tp in tps}

    def offsets(self, tps: list[PartitionId]) -> dict[PartitionId, int | None]:
        return {tp: self.stored_offsets.get(tp) for tp in tps}

    def state(self, tp: PartitionId) -> Iterator[tuple[str, str, bytes]]:
        for key, raw in self.states.get(tp, {}).items():
            view, _, entity = key.partition(FIELD_SEP)
            yield view, entity, raw

    def commit(
        self,
        epochs: Mapping[PartitionId, int],
        offsets: Mapping[PartitionId, int],
        committed: Mapping[PartitionId, int | None],
        state: Mapping[PartitionId, dict[str, bytes | None]],
        rows: Any,
        *,
        fenced: bool = True,
    ) -> None:
        verdicts = {}
        for tp in offsets:
            epoch = self.epochs.get(tp)
            stored = self.stored_offsets.get(tp)
            verdicts[tp] = verify(
                epochs[tp], None if epoch is None else b"%d" % epoch, committed.get(tp), offsets[tp],
                None if stored is None else b"%d" % stored,
            )  # fmt: skip
        raise_for(verdicts)
        for tp, target in offsets.items():
            entries = self.states.setdefault(tp, {})
            for key, raw in (state.get(tp) or {}).items():
                if raw is None:
                    entries.pop(key, None)
                else:
                    entries[key] = raw
            self.stored_offsets[tp] = target
        self.commits += 1

    def forget(self) -> None:
        """As if the store restarted empty."""
        self.epochs.clear()
        self.stored_offsets.clear()
        self.states.clear()

    def state_keys(self, topic: str) -> list[str]:
        return [f"{t}:{p}" for t, p in self.states if t == topic]

    def drop_topic(self, topic: str) -> None:
        for tp in [tp for tp in self.states if tp[0] == topic]:
            del self.states[tp]
