"""Re-keying: a view keyed by a field other than its topic's key, through a repartition topic, exactly once.

The window state of an entity must see all of that entity's events in one partition, in one order. A
``store_id`` view over ``customer_id``-keyed orders cannot have that from the source topic, so the worker
first copies the source into a repartition topic keyed by the view's entity (Kafka Streams' pattern):

- the copy is a :class:`~livectx.transactional.TransactionalLoop`: each batch of copied records and the
  source offsets it consumed commit in one Kafka transaction, so a ``kill -9`` anywhere neither loses nor
  doubles a record for ``read_committed`` readers (the engine's consumers are);
- a record keeps its value, headers and Kafka timestamp (the engine's event-time bounds still hold);
  one that does not decode, or lacks the new key, goes to the dead-letter topic inside the transaction;
- the engine then runs the view over the repartition topic like any other, with its exactly-once
  checkpoints in Redis.

A table view (:func:`livectx.repo.cdc.table_view`) grouped by a column other than the table's key is
re-keyed the same way, change by change (:func:`livectx.cdc.changelog.routes`): an update that moves a row to
another entity also sends the old entity a delete of the row, so each partition's aggregate holds whole
entities and retracts what left them. Debezium's tombstones are not copied (the delete before one was).

The repartition topic belongs to one engine consumer group (``livectx.repartition.<group>.<topic>.by.<key>``,
created on start with the source's partition count and retention): two groups never write one. A
background repartitioner that fails stops the worker (its re-keyed views would silently go stale).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livectx import faults, serde
from livectx.cdc.changelog import ChangelogGroup, routes
from livectx.errors import LivectxError, SchemaError
from livectx.events import Event
from livectx.features.spec import FeatureGroup
from livectx.settings import Settings
from livectx.topics import TopicSpec
from livectx.transactional import DeadLetter, LoopStats, TransactionalLoop

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)
#: Test hook (:mod:`livectx.faults`): ``produced:<n>`` SIGKILLs the worker right after the n-th record copied
#: (its transaction still open).
CRASH_ENV = "LIVECTX_REPARTITION_CRASH"


@dataclass(frozen=True)
class Repartition:
    """One source topic copied keyed by one field."""

    source_topic: str  # the topic actually read (after any --source-topic mapping)
    key_field: str
    topic: str  # the repartition topic
    event_type: type[Event]  # the source's model, keyed by ``key_field``
    changelog: bool = False  # a table view's Debezium changes: routed with retraction (module doc)


def repartition_topic(consumer_group: str, source_topic: str, key_field: str) -> str:
    return f"livectx.repartition.{consumer_group}.{source_topic}.by.{key_field}"


def plan_repartitions(
    groups: Sequence[FeatureGroup | ChangelogGroup], topic_map: Mapping[str, str], consumer_group: str
) -> tuple[list[Any], dict[tuple[str, str], Repartition]]:
    """The groups (and table views) as the engine runs them (re-keyed ones read their repartition topic, with
    a model keyed by their entity) and the repartitions they need."""
    repartitions: dict[tuple[str, str], Repartition] = {}
    engine_groups = []
    for group in groups:
        if not group.rekeyed:
            engine_groups.append(group)
            continue
        source = topic_map.get(group.source_topic, group.source_topic)
        key = (source, group.entity_key)
        if key not in repartitions:
            rekeyed_model = type(
                f"{group.event_type.__name__}By{group.entity_key.title().replace('_', '')}",
                (group.event_type,),
                {"key_field": group.entity_key, "__module__": __name__},
            )
            repartitions[key] = Repartition(
                source,
                group.entity_key,
                repartition_topic(consumer_group, source, group.entity_key),
                rekeyed_model,
                changelog=isinstance(group, ChangelogGroup),
            )
        r = repartitions[key]
        engine_groups.append(dataclasses.replace(group, source_topic=r.topic, event_type=r.event_type))
    return engine_groups, repartitions


def ensure_topics(
    admin: Any, repartitions: Sequence[Repartition], partitions: Mapping[str, int], retention: Mapping[str, str]
) -> None:
    """Create the repartition topics with their source's partition count and ``retention.ms`` (a rebuild of a
    re-keyed view replays its repartition topic, so it must keep what the source keeps)."""
    from livectx import topics

    specs = [
        TopicSpec(
            r.topic,
            partitions.get(r.source_topic, 3),
            {
                "cleanup.policy": "delete",
                "retention.ms": retention.get(r.source_topic, str(7 * topics.DAY_MS)),
                "retention.bytes": "-1",
            },
            f"{r.source_topic} keyed by {r.key_field} (livectx repartition)",
        )
        for r in repartitions
    ]
    if specs:
        topics.apply(admin, specs)


class Repartitioner:
    """Copies one source topic into its repartition topic (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        repartition: Repartition,
        *,
        consumer_group: str,
        worker_id: str,
        dead_letter_topic: str | None = None,
    ) -> None:
        self.repartition = repartition
        self.error: BaseException | None = None
        self.on_failure: Callable[[], None] = lambda: None
        self._hits: dict[str, int] = {}
        self.loop = TransactionalLoop(
            settings,
            name=f"repartition-{repartition.source_topic}-{repartition.key_field}",
            topics=[repartition.source_topic],
            consumer_group=f"{consumer_group}.repartition.{repartition.source_topic}.{repartition.key_field}",
            worker_id=worker_id,
            handle=self.handle,
            dead_letter_topic=dead_letter_topic,
            batch_size=2_000,
        )

    def handle(self, message: Message, producer: Producer) -> None:
        r = self.repartition
        if r.changelog:
            self._route_change(message, producer)
            return
        try:
            event = serde.decode(r.event_type, message.value())
        except SchemaError as exc:
            raise DeadLetter(str(exc)) from None
        key = str(getattr(event, r.key_field)).strip()
        if not key:
            raise DeadLetter(f"missing key: {r.key_field} is empty, so the record cannot be re-keyed")
        _kind, timestamp = message.timestamp()
        produce_kwargs: dict[str, Any] = {"timestamp": timestamp} if timestamp > 0 else {}
        producer.produce(r.topic, key=key.encode(), value=message.value(), headers=message.headers(), **produce_kwargs)
        faults.reached(CRASH_ENV, "produced", self._hits)

    def _route_change(self, message: Message, producer: Producer) -> None:
        value = message.value()
        if value is None:
            return  # a tombstone: the delete before it was routed
        try:
            routed = routes(json.loads(value), self.repartition.key_field)
        except (ValueError, TypeError, AttributeError) as exc:
            raise DeadLetter(f"not a Debezium change event this view can route: {exc}") from None
        _kind, timestamp = message.timestamp()
        produce_kwargs: dict[str, Any] = {"timestamp": timestamp} if timestamp > 0 else {}
        for entity, synthesized in routed:
            out = value if synthesized is None else json.dumps(synthesized).encode()
            producer.produce(self.repartition.topic, key=entity.encode(), value=out, headers=message.headers(),
                             **produce_kwargs)  # fmt: skip
        faults.reached(CRASH_ENV, "produced", self._hits)

    def run(self, *, until_caught_up: bool) -> LoopStats:
        return self.loop.run(until_caught_up=until_caught_up)

    def run_logged(self) -> None:
        """:meth:`run` following the stream, for a background thread: a failure is logged and kept."""
        try:
            self.run(until_caught_up=False)
        except BaseException as exc:
            self.error = exc
            log.exception("repartitioning %s by %s failed", self.repartition.source_topic, self.repartition.key_field)
            self.on_failure()

    def stop(self) -> None:
        self.loop.stop()


class Running:
    """The repartitioners a worker started in the background (none when they ran to completion first)."""

    def __init__(self, pairs: list[tuple[Repartitioner, threading.Thread]]) -> None:
        self._pairs = pairs
        #: Called when a background repartitioner dies (the worker stops: its re-keyed views would go stale).
        self.on_failure: Callable[[], None] = lambda: None
        for repartitioner, _thread in pairs:
            repartitioner.on_failure = lambda: self.on_failure()

    def stop(self) -> None:
        for repartitioner, _thread in self._pairs:
            repartitioner.stop()
        for _repartitioner, thread in self._pairs:
            thread.join(60)

    def raise_failure(self) -> None:
        """Raise the first background repartitioner's failure, if any."""
        for repartitioner, _thread in self._pairs:
            if repartitioner.error is not None:
                r = repartitioner.repartition
                raise LivectxError(
                    f"repartitioning {r.source_topic} by {r.key_field} failed: {repartitioner.error}"
                ) from repartitioner.error


def start_repartitioners(
    settings: Settings,
    repartitions: Sequence[Repartition],
    consumer_group: str,
    worker_id: str,
    dead_letter: str | None,
    until_caught_up: bool,
) -> Running:
    """Create the repartition topics, then copy: to completion first with ``until_caught_up`` (so the engine's
    end offsets include every copied record), else in background threads for as long as the worker runs."""
    if not repartitions:
        return Running([])
    from confluent_kafka.admin import ConfigResource, ResourceType

    from livectx.kafka import admin_client

    admin = admin_client(settings)
    metadata = admin.list_topics(timeout=10).topics
    sources = sorted({r.source_topic for r in repartitions if r.source_topic in metadata})
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in sources]) if sources else {}
    retention = {resource.name: future.result()["retention.ms"].value for resource, future in described.items()}
    ensure_topics(admin, repartitions, {t: len(m.partitions) for t, m in metadata.items()}, retention)
    repartitioners = [
        Repartitioner(settings, r, consumer_group=consumer_group, worker_id=worker_id, dead_letter_topic=dead_letter)
        for r in repartitions
    ]
    if until_caught_up:
        for repartitioner in repartitioners:
            stats = repartitioner.run(until_caught_up=True)
            log.info("repartitioned %s by %s: %d records", repartitioner.repartition.source_topic,
                     repartitioner.repartition.key_field, stats.consumed)  # fmt: skip
        return Running([])
    pairs = []
    for repartitioner in repartitioners:
        thread = threading.Thread(
            target=repartitioner.run_logged, name=f"repartition-{repartitioner.repartition.key_field}", daemon=True
        )
        thread.start()
        pairs.append((repartitioner, thread))
    return Running(pairs)
