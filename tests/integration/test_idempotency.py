"""Idempotent actions against the real Redis: one run per key, recorded outcomes, failed actions retry."""

from __future__ import annotations

import uuid

import pytest
from livectx_agents.idempotency import IdempotentActions, idempotency_key

from livectx.redis_client import redis_client
from livectx.settings import Settings


def test_an_action_runs_once_per_key_and_its_outcome_is_recorded(settings: Settings, stack) -> None:  # type: ignore[no-untyped-def]
    actions = IdempotentActions(redis_client(settings), namespace=f"test:{uuid.uuid4().hex[:8]}")
    calls: list[str] = []
    key = idempotency_key("livectx.tickets", 2, 41)
    assert key == "livectx.tickets-2-41"
    first = actions.run_once(key, lambda: calls.append("sent") or {"id": 7})
    again = actions.run_once(key, lambda: calls.append("sent twice") or {"id": 8})
    assert calls == ["sent"]
    assert (first.ran, first.result) == (True, {"id": 7})
    assert (again.ran, again.result, again.pending) == (False, {"id": 7}, False)


def test_a_failed_action_can_be_retried_and_a_claim_in_progress_blocks(settings: Settings, stack) -> None:  # type: ignore[no-untyped-def]
    client = redis_client(settings)
    namespace = f"test:{uuid.uuid4().hex[:8]}"
    actions = IdempotentActions(client, namespace=namespace)

    def boom() -> None:
        raise RuntimeError("smtp down")

    with pytest.raises(RuntimeError):
        actions.run_once("k1", boom)
    assert actions.run_once("k1", lambda: "ok").ran  # not blocked by the failed attempt

    # Another worker holds the claim (it is mid-action, or crashed mid-action): do not act.
    other = IdempotentActions(client, namespace=namespace)
    client.set(f"{namespace}:k2", '{"state": "claimed", "owner": "elsewhere"}', ex=60)
    assert other.run_once("k2", lambda: pytest.fail("must not run")).pending


def test_an_expired_claim_taken_over_is_not_clobbered_by_its_first_owner(settings: Settings, stack) -> None:  # type: ignore[no-untyped-def]
    client = redis_client(settings)
    namespace = f"test:{uuid.uuid4().hex[:8]}"
    slow = IdempotentActions(client, namespace=namespace, claim_ttl_s=60)
    takeover = '{"state": "claimed", "owner": "second worker"}'

    def outlives_its_claim() -> str:
        client.set(f"{namespace}:k3", takeover)  # as if the claim expired and another worker took it
        return "sent late"

    assert slow.run_once("k3", outlives_its_claim).ran
    assert client.get(f"{namespace}:k3").decode() == takeover  # the second worker's claim stands
