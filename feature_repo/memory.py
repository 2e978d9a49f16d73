"""The example domain's semantic memory: texts the embedding worker keeps searchable in the vector store."""

import entities
import sources

from livectx.repo.declare import memory_view

tickets_memory = memory_view(
    name="tickets_memory",
    source=sources.support_ticket,
    entity=entities.ticket,
    text=["subject", "text"],
    tenant="tenant",
    category="department",
    metadata=["user_id"],
    delete_when=("op", "delete"),
    description="Past support tickets, for routing new ones by similarity.",
)

reviews_memory = memory_view(
    name="reviews_memory",
    source=sources.review,
    entity=entities.review,
    text=["text"],
    tenant="tenant",
    category="item_id",
    metadata=["user_id", "item_id", "rating"],
    delete_when=("op", "delete"),
    description="Product reviews.",
)

documents_memory = memory_view(
    name="documents_memory",
    source=sources.document,
    entity=entities.kb_document,
    text=["title", "text"],
    tenant="tenant",
    category="category",
    delete_when=("op", "delete"),
    description="Knowledge-base documents (FAQ, policy, runbook).",
)
