"""The fraud agent catches the card-testing attack, judged point-in-time against the scenario's labels.

For every payment, the features are recomputed as of that payment (the same declarations and code the
streaming engine is tested against), served to the agent through its real ``get_context`` path, and its
decision compared with ``is_fraud``. No service is needed: features come from the recomputation.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from livectx_agents.context import ContextClient, ContextConfig
from livectx_agents.example_fraud import CardTestingRules, FraudAgent

from livectx.features.point_in_time import features_as_of
from tests.example import FEATURE_SERVICES, Transaction, get_scenario, group_named

GROUPS = [group_named(name) for name in FEATURE_SERVICES["fraud_features"]]


def test_fraud_agent_catches_card_testing_with_high_precision_and_recall() -> None:
    events = [e for _t, e in itertools.islice(get_scenario("fraud")(7, datetime(2026, 3, 1, tzinfo=UTC), 200.0), 30000)]
    served: dict[str, dict[str, list[Any]]] = {}
    context = ContextClient(
        lambda entities, _service: served[entities[0]],
        lambda *_a: [],
        lambda _t: None,  # type: ignore[arg-type,return-value]
        config=ContextConfig(budget_ms=10_000, features_timeout_ms=10_000),  # this test is about decisions
    )
    agent = FraudAgent(context, CardTestingRules(), budget_ms=10_000)
    try:
        for event, values in features_as_of(events, GROUPS):
            if isinstance(event, Transaction):
                served[event.user_id] = {"user_id": [event.user_id], **{k: [v] for k, v in values.items()}}
                decision = agent.decide(event, f"t-0-{event.txn_id}")
                assert decision.action in {"approve", "decline"} and decision.degraded == []
    finally:
        context.close()
    stats = agent.stats
    frauds = sum(1 for e in events if isinstance(e, Transaction) and e.is_fraud)
    assert frauds >= 300 and stats.tp + stats.fn == frauds
    print(f"fraud agent: precision {stats.precision:.3f} recall {stats.recall:.3f} ({stats.tp} of {frauds} caught)")
    assert stats.precision >= 0.95, stats
    assert stats.recall >= 0.85, stats
