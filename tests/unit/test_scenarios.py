import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from livectx import serde
from livectx.errors import UnknownNameError
from tests.example import SCENARIO_NAMES, Transaction, get_scenario

START = datetime(2026, 3, 10, tzinfo=UTC)


def _take(name: str, seed: int, n: int) -> list[tuple[str, bytes, bytes]]:
    events = itertools.islice(get_scenario(name)(seed, START, 200.0), n)
    return [(topic, *serde.encode(event)[:2]) for topic, event in events]


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_same_seed_gives_identical_bytes_and_other_seed_differs(name: str) -> None:
    assert _take(name, 7, 2000) == _take(name, 7, 2000)
    assert _take(name, 7, 2000) != _take(name, 8, 2000)


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_events_come_in_event_time_order(name: str) -> None:
    times = [e.event_time for _, e in itertools.islice(get_scenario(name)(1, START, 200.0), 5000)]
    assert times == sorted(times)
    assert times[0] >= START


def test_fraud_scenario_contains_card_testing_bursts() -> None:
    txns = [
        e for _, e in itertools.islice(get_scenario("fraud")(3, START, 200.0), 30_000) if isinstance(e, Transaction)
    ]
    fraud = [t for t in txns if t.is_fraud]
    assert fraud, "no attack in 30k events"
    by_card_merchant: dict[tuple[str, str], list[Transaction]] = defaultdict(list)
    for t in fraud:
        by_card_merchant[(t.card_id, t.merchant_id)].append(t)
    bursts = [b for b in by_card_merchant.values() if len(b) >= 20]
    assert bursts
    for burst in bursts:
        assert len({t.ip for t in burst}) >= 0.9 * len(burst)  # many distinct IPs
        assert max(t.amount for t in burst) <= 5.0  # small amounts
        span = max(t.event_time for t in burst) - min(t.event_time for t in burst)
        assert span <= timedelta(minutes=2)
    legit = [t for t in txns if not t.is_fraud]
    assert sum(t.amount for t in legit) / len(legit) > 10 * sum(t.amount for t in fraud) / len(fraud) / 3


def test_support_scenario_has_departments_and_deletes() -> None:
    tickets = [e for _, e in itertools.islice(get_scenario("support")(5, START, 20.0), 3000)]
    assert {t.department for t in tickets if t.op == "upsert"} == {"account", "billing", "shipping", "technical"}
    assert any(t.op == "delete" for t in tickets)


def test_unknown_scenario_names_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="fraud"):
        get_scenario("nope")
