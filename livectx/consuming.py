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
- :class:`GroupLag`: a group's lag from outside it, with its client kept for the caller's life instead
  of new clients per metrics tick.

Committed offsets are read through :class:`livectx.offsets.GroupCommits` (a consumer carrying the group's
id), never the admin client, whose offset read crashes the process when a coordinator moves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError
from livectx.offsets import GroupCommits, PartitionId, end_offsets
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message

__all__ = ["CaughtUp", "GroupLag", "PartitionId", "assigned_lag", "is_record", "probe_consumer", "skip_client_error"]

#: How often a loop asks the broker whether its group caught up: a broker round trip, not once per batch.
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
    still ends. ``commits`` reads the group's committed offsets (a :class:`GroupCommits`); ``clock`` is
    injectable for tests. :meth:`close` it on the thread that probed."""

    def __init__(
        self,
        group: str,
        targets: dict[PartitionId, int],
        commits: Any,
        *,
        interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.group = group
        self.targets = targets
        self._commits = commits
        self._interval_s = interval_s
        self._clock = clock
        self._next_probe = 0.0

    @classmethod
    def start(cls, settings: Settings, group: str, topics: Iterable[str]) -> CaughtUp:
        """Read the log ends of ``topics`` now: what the run will have to commit."""
        return cls(group, end_offsets(settings, sorted(set(topics))), GroupCommits.open(settings, group))

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
        return bool(self._commits.reached(self.targets))

    def close(self) -> None:
        self._commits.close()

    @staticmethod
    def close_if_any(probe: CaughtUp | None) -> None:
        """For a loop whose probe is ``None`` without ``--until-caught-up``."""
        if probe is not None:
            probe.close()


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
    """Consumer groups' ``(topic, partition, committed, end)`` rows, asked from outside the groups (a
    worker's metrics thread, ``livectx ingest lag``, the dashboard). One :class:`GroupCommits` per group
    serves every call, watermarks included: a metrics tick used to build its clients afresh, a connection
    set-up per tick. ``topics`` limits the rows to those topics (a worker knows its sources); by default
    every topic counts. ``open_group`` is injectable (tests); by default it opens from ``settings``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        topics: Iterable[str] | None = None,
        open_group: Callable[[str], Any] | None = None,
    ) -> None:
        self._settings = settings
        self._topics = None if topics is None else sorted(set(topics))
        self._open_group = open_group
        self._groups: dict[str, Any] = {}

    def rows(self, group: str) -> list[tuple[str, int, int, int]]:
        commits = self.commits(group)
        committed = commits.read_topics(self._topics)
        if not committed:
            return []
        ends = commits.ends(sorted({t for t, _ in committed}))
        return sorted((t, p, off, ends.get((t, p), off)) for (t, p), off in committed.items())

    def commits(self, group: str) -> Any:
        """The group's reader, opened on first use and kept."""
        if group not in self._groups:
            self._groups[group] = self._opener()(group)
        return self._groups[group]

    def keep_only(self, groups: Iterable[str]) -> None:
        """Close the readers of groups not in ``groups`` (the dashboard's listing moved on)."""
        for group in set(self._groups) - set(groups):
            self._groups.pop(group).close()

    def close(self) -> None:
        """Close every reader; call it on the thread that used them."""
        self.keep_only(())

    def _opener(self) -> Callable[[str], Any]:
        if self._open_group is not None:
            return self._open_group
        if self._settings is None:
            raise ValueError("GroupLag needs settings, or open_group injected")
        settings = self._settings
        return lambda group: GroupCommits.open(settings, group)


def probe_consumer(settings: Settings, **overrides: Any) -> Consumer:
    """A consumer that never joins a group: it only reads metadata and watermarks."""
    from confluent_kafka import Consumer

    config = {"group.id": "livectx-offset-probe", "enable.auto.commit": False, **overrides}
    return Consumer(settings.kafka_config(**config))
