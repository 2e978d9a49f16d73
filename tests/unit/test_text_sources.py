"""Text records -> upsert / delete / dead-letter reason (the embedding worker's classification)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from livectx import serde
from livectx.errors import SchemaError
from livectx.vectors.sources import Delete, Upsert, to_change, vector_id
from tests import example
from tests.example import TEXT_SOURCES, Document, SupportTicket

TICKETS = TEXT_SOURCES[example.TICKETS]
DOCS = TEXT_SOURCES[example.DOCUMENTS]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _ticket(**overrides: object) -> bytes:
    fields = {"event_time": NOW, "ticket_id": "tk1", "user_id": "u1", "subject": "Late", "text": "Where is it?"}
    fields.update(overrides)
    return serde.encode(SupportTicket(**fields))[1]  # type: ignore[arg-type]


def test_upsert_carries_text_metadata_and_a_stable_id() -> None:
    change = to_change(TICKETS, b"tk1", _ticket(department="shipping", tenant="acme"), max_chars=1000)
    assert change == Upsert(
        id="support_ticket:tk1",
        text="Late\nWhere is it?",
        source="support_ticket",
        tenant="acme",
        category="shipping",
        event_ms=int(NOW.timestamp() * 1000),
        metadata={"user_id": "u1"},
    )
    assert change.id == vector_id("support_ticket", "tk1")


def test_delete_op_and_tombstone_both_delete_the_same_id() -> None:
    assert to_change(TICKETS, b"tk1", _ticket(op="delete", text=""), 1000) == Delete("support_ticket:tk1")
    assert to_change(TICKETS, b"tk1", None, 1000) == Delete("support_ticket:tk1")
    doc = serde.encode(Document(event_time=NOW, doc_id="d9", title="Refunds", text="Policy"))[1]
    assert to_change(DOCS, b"d9", doc, 1000) == Upsert(
        id="document:d9", text="Refunds\nPolicy", source="document", tenant="default", category=None,
        event_ms=int(NOW.timestamp() * 1000), metadata={},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, None, "tombstone without a key"),
        (b"tk1", b'{"subject": "\xff\xfe"}', "invalid UTF-8 in the record value at byte 13"),
        (b"\xff", None, "invalid UTF-8 in the record key"),
        (b"tk1", b"not json", "not JSON"),
        (b"tk1", json.dumps({"ticket_id": "tk1"}).encode(), "schema violation"),
        (b"tk1", _ticket(subject="", text="   "), "empty text"),
        (b"tk1", _ticket(ticket_id="  "), "missing id: ticket_id is empty"),
        (b"tk1", _ticket(text="x" * 2000), "oversized text: 2005 characters, over the 1000 limit"),
    ],
)
def test_bad_records_get_a_reason(key: bytes | None, value: bytes | None, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        to_change(TICKETS, key, value, max_chars=1000)
