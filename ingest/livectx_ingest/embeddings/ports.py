"""The few operations each part of the embedding worker needs from the services around it.

Each part names only what it calls, so a unit test hands it a small fake instead of Kafka, Redis or a
vector store: the consumer's partition control for backpressure, its commit for the in-order commits,
the dead-letter publisher's flush before a commit, the watermark's advance after a write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from livectx.consuming import PartitionId

if TYPE_CHECKING:
    from confluent_kafka import Message

    from livectx.vectors.records import VectorRecord

#: A partition of a topic, as the worker keys its positions.


class PartitionControl(Protocol):
    """Backpressure: stop and restart fetching on the assigned partitions (Kafka keeps the backlog)."""

    def assignment(self) -> list[Any]: ...

    def pause(self, partitions: list[Any]) -> None: ...

    def resume(self, partitions: list[Any]) -> None: ...


class OffsetCommitter(Protocol):
    """The commit of written batches, and what :func:`~livectx.consuming.assigned_lag` reads for the lag."""

    def commit(self, *, offsets: list[Any], asynchronous: Literal[False]) -> Any: ...

    def assignment(self) -> list[Any]: ...

    def get_watermark_offsets(self, partition: Any, timeout: float = ..., cached: bool = ...) -> tuple[int, int]: ...


class RecordSource(PartitionControl, Protocol):
    """Reading records: the first one waited for, the rest taken as fetched; a held partition sought back."""

    def poll(self, timeout: float) -> Message | None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Message]: ...

    def seek(self, partition: Any) -> None: ...


class DeadLetters(Protocol):
    """Where a record that cannot be embedded goes; flushed before the offsets past it are committed."""

    def publish(self, message: Message, reason: str) -> None: ...

    def flush(self) -> None: ...


class Watermark(Protocol):
    """How far the index is searchable: advanced only after the store acknowledged a batch."""

    def advance(self, positions: dict[PartitionId, int]) -> None: ...

    def publish_status(self, lag_records: int | None, newest_event_ms: int | None, now_ms: int) -> None: ...


class VectorWriter(Protocol):
    """The two writes of a batch (the rest of :class:`~livectx.vectors.store.VectorStore` is not needed)."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def upsert(self, records: Sequence[VectorRecord]) -> None: ...


class TextEmbedder(Protocol):
    """One forward pass over a batch of texts."""

    def embed(self, texts: Sequence[str], batch_size: int = ...) -> Any: ...
