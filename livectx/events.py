"""The event base class, and the platform's own events (agents' decisions).

A domain's events are not here: they are declared in its feature repo (``KafkaSource`` schemas), and
:mod:`livectx.repo.schema` builds strict models of them on this base. Each event carries its own event
time (``event_time``, timezone-aware) and names its entity key, so partitioning, windowing and
point-in-time joins all use the time the thing happened, never the time a worker saw it. Models are
strict: a string where a number belongs is a schema violation, not a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event. ``key_field`` names the entity id used as the Kafka key."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    key_field: ClassVar[str]
    #: How far an event time may be ahead of / behind its record's Kafka timestamp (None: no bound); set
    #: per source by its declaration, checked by :func:`livectx.serde.check_event_time`.
    max_ahead_ms: ClassVar[int | None] = None
    max_behind_ms: ClassVar[int | None] = None

    event_time: AwareDatetime

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))

    @property
    def event_time_ms(self) -> int:
        return int(self.event_time.timestamp() * 1000)


class Decision(Event):
    """What an agent decided about one source record (approve/decline a payment, route a ticket).

    ``source`` is the record's ``<topic>-<partition>-<offset>``: the idempotency key of any side effect."""

    schema_name = "decision"
    key_field = "entity_id"

    decision_id: str
    agent: str
    entity_id: str
    action: str
    score: float | None = None
    reasons: list[str] = Field(default_factory=list)
    degraded: list[str] = Field(default_factory=list)
    source: str
    model: str | None = None


#: The platform's own events (a domain's events are declared in its feature repo, :mod:`livectx.repo`).
PLATFORM_EVENTS: dict[str, type[Event]] = {cls.schema_name: cls for cls in (Decision,)}


def utc_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(value.timestamp() * 1000)
