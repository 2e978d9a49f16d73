"""The ticket-router agent: route each new support ticket by its most similar past tickets, notify once.

For each ticket on ``livectx.tickets``: ``get_context`` searches the semantic memory for the most similar
earlier tickets (same tenant, earlier event time, not itself); their departments vote, weighted by
similarity; the ticket is routed to the winner, or to the ``general`` queue when the memory is
unavailable or has no neighbours (a degraded context is a fallback route, never a stalled agent). The
department is notified (a local, non-idempotent side effect: a line appended to a JSON-lines file),
exactly once per ticket thanks to an idempotency claim keyed by the record's position. The routing
decision goes to ``livectx.decisions`` in the same Kafka transaction as the input offsets.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livectx import serde, topics, tracing
from livectx.errors import SchemaError
from livectx.events import Decision
from livectx.schemas.platform import platform_encoder
from livectx.settings import Settings
from livectx.vectors.records import VectorFilter
from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.idempotency import IdempotentActions, idempotency_key
from livectx_agents.loop import DeadLetter, run_agent

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)

FALLBACK_QUEUE = "general"
#: Fault injection for tests: SIGKILL this process right after the N-th notification, before the
#: transaction that commits its offset. Unset in production.
CRASH_AFTER_NOTIFICATIONS = "LIVECTX_FAULT_CRASH_AFTER_NOTIFICATIONS"


class FileNotifier:
    """Appends one JSON line per notification: deliberately not idempotent (like e-mail or a pager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def notify(self, department: str, ticket: Any, key: str) -> dict[str, Any]:
        record = {"department": department, "ticket_id": ticket.ticket_id, "key": key, "at_ms": int(time.time() * 1000)}
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return record


def route(hits: list[Any], own_id: str) -> tuple[str, float, list[str]]:
    """Similarity-weighted vote of the neighbours' departments: (department, confidence, neighbour ids)."""
    votes: dict[str, float] = defaultdict(float)
    used = [h for h in hits if h.id != own_id and h.category]
    for hit in used:
        votes[hit.category] += max(0.0, hit.score)
    if not votes:
        return FALLBACK_QUEUE, 0.0, []
    department = max(sorted(votes), key=lambda d: votes[d])
    return department, votes[department] / sum(votes.values()), [h.id for h in used]


#: The example repo's support tickets (this agent belongs to the example domain).
TICKETS_TOPIC = "livectx.tickets"
TICKET_SOURCE = "support_ticket"

#: Embedding a ticket on a CPU takes ~10-30 ms and the search a few more: the router's budget allows for
#: that with room for a loaded machine (a chat agent's budget would not).
DEFAULT_BUDGET_MS = 500.0


class TicketRouter:
    def __init__(
        self,
        settings: Settings,
        context: ContextClient,
        actions: IdempotentActions,
        notifier: FileNotifier,
        *,
        decisions_topic: str = topics.DECISIONS,
        top_k: int = 10,
        budget_ms: float = DEFAULT_BUDGET_MS,
    ) -> None:
        self.settings = settings
        self.context = context
        self.actions = actions
        self.notifier = notifier
        self.decisions_topic = decisions_topic
        self._encoder = platform_encoder(settings)  # plain, or through the registry (settings)
        self._encoder.check()
        from livectx.repo import current_repo

        self.ticket_model = current_repo(settings).model(TICKET_SOURCE)
        self.top_k = top_k
        self.budget_ms = budget_ms
        self.notified = 0
        self.routed: dict[str, int] = defaultdict(int)
        self._crash_after = int(os.environ.get(CRASH_AFTER_NOTIFICATIONS, "0") or 0)

    def handle(self, message: Message, producer: Producer) -> None:
        if message.value() is None:
            return  # a tombstone retracts a ticket: nothing to route
        try:
            ticket = serde.decode(self.ticket_model, message.value())
        except SchemaError as exc:
            raise DeadLetter(str(exc)) from None
        if ticket.op == "delete":
            return
        key = idempotency_key(message.topic(), message.partition(), message.offset())
        context = self.context.get_context(
            [],
            query_text=f"{ticket.subject}\n{ticket.text}",
            top_k=self.top_k,
            filters=VectorFilter(tenant=ticket.tenant, sources=("support_ticket",), until_ms=ticket.event_time_ms),
            budget_ms=self.budget_ms,
        )
        department, confidence, neighbours = route(context.similar, f"support_ticket:{ticket.ticket_id}")
        outcome = self.actions.run_once(key, lambda: self.notifier.notify(department, ticket, key))
        if outcome.ran:
            self.notified += 1
            if self._crash_after and self.notified >= self._crash_after:
                os.kill(os.getpid(), signal.SIGKILL)  # fault injection: after the side effect, before the commit
        self.routed[department] += 1
        decision = Decision(
            event_time=ticket.event_time,
            decision_id=key,
            agent="router",
            entity_id=ticket.ticket_id,
            action=f"route:{department}",
            score=confidence,
            reasons=[f"neighbours: {', '.join(neighbours[:5])}"] if neighbours else ["no similar past tickets"],
            degraded=context.degraded,
            source=key,
        )
        k, v, headers = self._encoder.encode(decision, self.decisions_topic)
        producer.produce(self.decisions_topic, key=k, value=v, headers=tracing.propagated(headers))


def run_router(
    settings: Settings,
    *,
    consumer_group: str = "livectx-router",
    worker_id: str = "0",
    source_topic: str = TICKETS_TOPIC,
    decisions_topic: str = topics.DECISIONS,
    notifications: Path | None = None,
    until_caught_up: bool = False,
    budget_ms: float = DEFAULT_BUDGET_MS,
) -> tuple[TicketRouter, Any]:
    """``budget_ms`` bounds each ticket's context call; a ticket whose similar tickets miss it is routed
    to the fallback queue with the reason in its decision's ``degraded`` (the agent never stalls)."""
    from livectx.redis_client import redis_client

    context = ContextClient.from_settings(
        settings, ContextConfig(budget_ms=budget_ms, vectors_timeout_ms=0.9 * budget_ms), features=False
    )
    router = TicketRouter(
        settings,
        context,
        IdempotentActions(redis_client(settings), namespace=f"livectx:router:{consumer_group}"),
        FileNotifier(notifications or settings.data_dir / "notifications" / "router.jsonl"),
        decisions_topic=decisions_topic,
        budget_ms=budget_ms,
    )
    stats = run_agent(
        settings, name="router", source_topic=source_topic, consumer_group=consumer_group, worker_id=worker_id,
        handle=router.handle, close=context.close, batch_size=20, until_caught_up=until_caught_up,
    )  # fmt: skip
    return router, stats
