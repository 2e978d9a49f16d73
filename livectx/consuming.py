"""What every consume loop shares beside its own work: the check of a fetched message, the "caught up"
probe, and lag.

The feature engine, the embedding and archive workers, the agents' transactional loop and the enricher
each consume differently (columns, batches for a model, Parquet files, transactions, async lookups), so
each keeps its own loop. These are the parts they all need and used to write out each time:

- :func:`is_record`: a fetched message is a record, or a client error that is skipped (retriable) or
  ends the worker (fatal), with the same log line everywhere (:func:`skip_client_error` for a loop that
  already holds the error).
- :class:`CaughtUp`: ``--until-caught-up``, the log ends taken at start and a throttled probe of the
  group's committed offsets (so "caught up" means durable, see :mod:`livectx.offsets`).
- :func:`assigned_lag`: lag from what the consumer already knows (no round trip), for a worker's status.
- :class:`GroupLag`: a group's lag from outside it, with its clients kept for the caller's life instead
  of a new admin client and probe consumer per metrics tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError
from livectx.kafka import admin_client
from livectx.offsets import committed_offsets, committed_reached, end_offsets, watermark_ends
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message

#: A partition of a topic, as every worker keys its positions.
PartitionId = tuple[str, int]

#: How often a loop asks the broker whether its group caught up: an admin round trip, not once per batch.
PROBE_INTERVAL_S = 0.1


def is_record(message: Message, log: logging.Logger) -> bool:
    """True for a record. A retriable client error (a broker gone for a moment) is logged and skipped: the
    client recovers by itself. A fatal one (fenced, or the idempotence state lost) raises: the worker ends
    with one line, and its consumer group hands the partitions to a healthy worker."""
    error = message.error()
    if error is None:
        return True
    skip_client_error(error, log)
    return False


def skip_client_error(error: KafkaError, log: logging.Logger) -> None:
    """The error half of :func:`is_record`, for a loop that already read ``message.error()`` (once per
    record) to look at it first: logs a retriable error, raises on a fatal one."""
    if error.fatal():
        raise LivectxError(f"Kafka consumer failed: {error}")
    log.warning("consumer error (retriable): %s", error)


class CaughtUp:
    """``--until-caught-up``: the log ends of the sources when the run started (``targets``), and whether
    ``group`` has committed them. Records produced after the start are not waited for, so a busy topic
    still ends. ``admin`` answers ``list_consumer_group_offsets``; ``clock`` is injectable for tests."""

    def __init__(
        self,
        group: str,
        targets: dict[PartitionId, int],
        admin: Any,
        *,
        interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.group = group
        self.targets = targets
        self._admin = admin
        self._interval_s = interval_s
        self._clock = clock
        self._next_probe = 0.0

    @classmethod
    def start(cls, settings: Settings, group: str, topics: Iterable[str]) -> CaughtUp:
        """Read the log ends of ``topics`` now: what the run will have to commit."""
        return cls(group, end_offsets(settings, sorted(set(topics))), admin_client(settings))

    @classmethod
    def when(cls, enabled: bool, settings: Settings, group: str, topics: Iterable[str]) -> CaughtUp | None:
        """The probe for a run with ``--until-caught-up``; ``None`` for a run that goes on until stopped."""
        return cls.start(settings, group, topics) if enabled else None

    def reached(self) -> bool:
        """Asks the broker at most once per interval (``False`` in between): cheap to call every batch."""
        now = self._clock()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._interval_s
        return self.reached_now()

    def reached_now(self) -> bool:
        return committed_reached(self._admin, self.group, self.targets)


def assigned_lag(consumer: Consumer, committed: Mapping[PartitionId, int]) -> int | None:
    """Records on the assigned partitions past what this worker committed, from the high watermarks the
    last fetches brought (no broker round trip); ``None`` until something was committed, or once closed."""
    from confluent_kafka import TopicPartition

    try:
        assignment = consumer.assignment()
    except RuntimeError:  # closed
        return None
    total, known = 0, False
    for tp in assignment:
        _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
        done = committed.get((tp.topic, tp.partition))
        if high >= 0 and done is not None:
            total += max(0, high - done)
            known = True
    return total if known else None


class GroupLag:
    """A consumer group's ``(topic, partition, committed, end)`` rows, asked from outside the group (a
    worker's metrics thread, ``livectx ingest lag``). One admin client and one probe consumer serve every
    call: a metrics tick used to build both afresh, a connection set-up per tick. ``admin`` and ``probe``
    are injectable (tests); by default they are made from ``settings`` on first use."""

    def __init__(self, settings: Settings | None = None, *, admin: Any = None, probe: Any = None) -> None:
        self._settings = settings
        self._admin = admin
        self._probe = probe

    def rows(self, group: str) -> list[tuple[str, int, int, int]]:
        if self._admin is None:
            self._admin = admin_client(self._require_settings())
        committed = committed_offsets(self._admin, group)
        if not committed:
            return []
        if self._probe is None:
            self._probe = probe_consumer(self._require_settings())
        ends = watermark_ends(self._probe, sorted({t for t, _ in committed}))
        return sorted((t, p, off, ends.get((t, p), off)) for (t, p), off in committed.items())

    def close(self) -> None:
        """Close the probe consumer (the admin client needs no close); call it on the thread that used them."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        self._admin = None

    def _require_settings(self) -> Settings:
        if self._settings is None:
            raise ValueError("GroupLag needs settings, or its clients injected")
        return self._settings


def probe_consumer(settings: Settings, **overrides: Any) -> Consumer:
    """A consumer that never joins a group: it only reads metadata and watermarks."""
    from confluent_kafka import Consumer

    config = {"group.id": "livectx-offset-probe", "enable.auto.commit": False, **overrides}
    return Consumer(settings.kafka_config(**config))
