"""A declared stream source as the workers use it: topic, event model, key, and the sanity bounds.

Built from a Feast ``KafkaSource`` by :mod:`livectx.repo.compile`. The event model validates records
(strict types, declared checks, finite numbers) and carries the source's event-time bounds, which
:func:`livectx.serde.check_event_time` applies against each record's Kafka timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from livectx.events import Event
from livectx.repo.cdc import CdcTable
from livectx.topics import TopicSpec


@dataclass(frozen=True)
class SourceDefaults:
    """What a source gets when its declaration does not say (``stream_source``'s defaults, and plain Feast's)."""

    partitions: int = 3
    retention: timedelta | None = timedelta(days=7)
    #: Kafka 4 itself refuses record timestamps more than an hour ahead (``message.timestamp.after.max.ms``).
    max_ahead: timedelta | None = timedelta(hours=1)
    #: Catches unit mistakes (seconds read as milliseconds land in 1970), not backfills.
    max_behind: timedelta | None = timedelta(days=3650)


DEFAULTS = SourceDefaults()

#: The compatibility levels every Confluent-compatible registry knows (Confluent's names).
COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
#: Consumers may read every version ever registered with the newest schema: what a replay of the
#: whole topic (the cold tier, a rebuild) needs, not just the last version.
DEFAULT_COMPATIBILITY = "BACKWARD_TRANSITIVE"
#: How livectx's producers write a source's records (``livectx.wire``): the payload alone, or in the
#: Confluent wire format through the registry. Readers detect the format per record either way.
WIRE_FORMATS = ("plain", "confluent")


@dataclass(frozen=True)
class RecordFormat:
    """How a source's records are encoded and may evolve: ``wire_format``, the payload's format (``json``
    or ``avro``, from the Feast message format); ``wire``, how livectx's producers frame it
    (``livectx.wire``: ``plain`` or ``confluent``); ``compatibility``, the registry's level for the
    subject (``livectx.compatibility``)."""

    wire_format: str
    wire: str = "plain"
    compatibility: str = DEFAULT_COMPATIBILITY


@dataclass(frozen=True)
class SourceSpec:
    name: str
    topic: str
    model: type[Event]
    key_field: str
    timestamp_field: str
    record_format: RecordFormat
    grace: timedelta
    partitions: int
    retention_ms: int
    description: str = ""
    #: The captured table when Debezium feeds the topic (:func:`livectx.repo.cdc.cdc_source`), else ``None``.
    cdc: CdcTable | None = None

    @property
    def wire_format(self) -> str:
        return self.record_format.wire_format

    @property
    def wire(self) -> str:
        """How livectx's producers write the records (``livectx.wire``): ``plain`` or ``confluent``."""
        return self.record_format.wire

    @property
    def compatibility(self) -> str:
        """The registry's compatibility level for this source's subject (``livectx.compatibility``)."""
        return self.record_format.compatibility

    @property
    def subject(self) -> str:
        """The registry subject of the record values: Confluent's TopicNameStrategy."""
        return f"{self.topic}-value"

    def topic_spec(self) -> TopicSpec:
        config = {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms), "retention.bytes": "-1"}
        purpose = self.description or f"{self.name} events, keyed by {self.key_field}"
        return TopicSpec(self.topic, self.partitions, config, purpose)
