"""Typed event models: what flows through the platform's topics.

Each event carries its own event time (``event_time``, timezone-aware) and names its entity key, so
partitioning, windowing and point-in-time joins all use the time the thing happened, never the time a
worker saw it. Models are strict: a string where a number belongs is a schema violation, not a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event. ``key_field`` names the entity id used as the Kafka key."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    key_field: ClassVar[str]

    event_time: AwareDatetime

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))

    @property
    def event_time_ms(self) -> int:
        return int(self.event_time.timestamp() * 1000)


class Transaction(Event):
    """A card payment. ``is_fraud`` is the simulator's ground truth, used as a label, never as a feature."""

    schema_name = "transaction"
    key_field = "user_id"

    txn_id: str
    user_id: str
    card_id: str
    merchant_id: str
    amount: float = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    ip: str
    country: str = Field(min_length=2, max_length=2)
    is_fraud: bool = False


class Login(Event):
    schema_name = "login"
    key_field = "user_id"

    login_id: str
    user_id: str
    ip: str
    device_id: str
    success: bool


class Click(Event):
    schema_name = "click"
    key_field = "user_id"

    click_id: str
    user_id: str
    session_id: str
    item_id: str
    page: str


class SupportTicket(Event):
    """A support ticket. ``op='delete'`` retracts it (the vector index removes it too)."""

    schema_name = "support_ticket"
    key_field = "ticket_id"

    ticket_id: str
    user_id: str
    subject: str
    text: str
    department: str | None = None
    tenant: str = "default"
    op: Literal["upsert", "delete"] = "upsert"


class Review(Event):
    schema_name = "review"
    key_field = "review_id"

    review_id: str
    user_id: str
    item_id: str
    rating: int = Field(ge=1, le=5)
    text: str
    tenant: str = "default"
    op: Literal["upsert", "delete"] = "upsert"


class Document(Event):
    """A knowledge-base document for the agent's semantic memory (FAQ, policy, runbook)."""

    schema_name = "document"
    key_field = "doc_id"

    doc_id: str
    title: str
    text: str
    category: str | None = None
    tenant: str = "default"
    op: Literal["upsert", "delete"] = "upsert"


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


EVENT_TYPES: dict[str, type[Event]] = {
    cls.schema_name: cls for cls in (Transaction, Login, Click, SupportTicket, Review, Document, Decision)
}


def utc_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(value.timestamp() * 1000)
