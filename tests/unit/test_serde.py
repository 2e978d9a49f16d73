from datetime import UTC, datetime

import pytest

from livectx import serde
from livectx.errors import SchemaError
from livectx.events import Decision
from tests.example import REPO, Click, Login, Review, SupportTicket, Transaction

T0 = datetime(2026, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
EXAMPLES = [
    Transaction(
        event_time=T0,
        txn_id="t1",
        user_id="u1",
        card_id="c1",
        merchant_id="m1",
        amount=12.5,
        currency="EUR",
        ip="1.2.3.4",
        country="DE",
    ),
    Login(event_time=T0, login_id="l1", user_id="u1", ip="1.2.3.4", device_id="d1", success=False),
    Click(event_time=T0, click_id="k1", user_id="u1", session_id="s1", item_id="i1", page="home"),
    SupportTicket(event_time=T0, ticket_id="tk1", user_id="u1", subject="Late", text="Where is it?"),
    Review(event_time=T0, review_id="r1", user_id="u1", item_id="i1", rating=4, text="Good"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.schema_name)
def test_round_trip_keeps_every_field_and_keys_by_entity(event) -> None:  # type: ignore[no-untyped-def]
    key, value, headers = serde.encode(event)
    assert key == event.key.encode()
    assert dict(headers)[serde.SCHEMA_HEADER] == f"{event.schema_name}.v1".encode()
    assert serde.decode(type(event), value) == event
    assert serde.decode(type(event), value).event_time_ms == 1773144000123


def _txn_json(**changes: object) -> bytes:
    import json

    raw = json.loads(serde.encode(EXAMPLES[0])[1])
    for key, val in changes.items():
        if val is ...:
            raw.pop(key)
        else:
            raw[key] = val
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (None, "empty value"),
        (_txn_json(amount="12.5"), "amount: Input should be a valid number"),
        (_txn_json(amount=-1), "amount: Input should be greater than or equal to 0"),
        (_txn_json(user_id=...), "user_id: Field required"),
        (_txn_json(event_time="2026-03-10T12:00:00"), "event_time: Input should have timezone info"),
        (_txn_json(extra_field=1), "extra_field: Extra inputs are not permitted"),
    ],
)
def test_bad_records_raise_schema_error_with_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        serde.decode(Transaction, value)


def test_event_types_by_header_name_come_from_the_repo() -> None:
    assert REPO.event_type("nope") is None
    assert REPO.event_type("transaction") is Transaction
    assert REPO.event_type("decision") is Decision
