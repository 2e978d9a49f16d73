"""The agent tools written once (ContextTools): arguments, results, errors a model can read, and
read-your-writes waiting, over injected parts (no services)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from livectx_agents.context import ContextClient
from livectx_agents.tools.context_tools import ContextTools, livectx_errors_as

from livectx.errors import LivectxError
from livectx.vectors.records import SearchHit
from tests.example import REPO

SERVICE = "fraud_features"
HIT = SearchHit("tickets:1", 0.9, "card declined", "support_ticket", "default", "billing", 1)


class _Store:
    """Feature rows whose newest event time moves on by 1 s per read (an engine catching up)."""

    def __init__(self, newest_ms: int) -> None:
        self.newest_ms = newest_ms
        self.reads = 0

    def read(self, entities: list[str], _service: str) -> dict[str, list[Any]]:
        self.reads += 1
        self.newest_ms += 1_000
        rows: dict[str, list[Any]] = {}
        for group in REPO.service_groups(SERVICE):
            rows[group.event_time_field] = [self.newest_ms] * len(entities)
            for feature in group.features:
                rows[feature.name] = [3] * len(entities)
        return rows


def _tools(store: _Store, sleeps: list[float]) -> ContextTools:
    client = ContextClient(
        store.read, lambda *_a: [HIT], lambda _t: np.zeros(3), services={SERVICE: REPO.service_groups(SERVICE)},
        memory_sources={"tickets": "support_ticket"},
    )  # fmt: skip
    return ContextTools(client, {SERVICE: "What the fraud agent reads."}, sleep=sleeps.append)


def test_get_context_search_and_features_return_json_ready_results() -> None:
    tools = _tools(_Store(0), [])
    context = tools.get_context(["u1"], query="card declined", memory_view="tickets", tenant="default")
    assert context["features"]["u1"]["txn_count_5m"] == 3 and context["similar"][0]["id"] == "tickets:1"
    assert context["freshness"]["newest_event_ms"]["u1"]["user_txn_5m"] == 1_000
    assert tools.search_memory("card declined")["similar"][0]["text"] == "card declined"
    features = tools.get_features(["u1", "u2"])
    assert set(features["features"]) == {"u1", "u2"} and features["degraded"] == []


def test_list_feature_services_describes_each_service_for_a_model() -> None:
    listed = _tools(_Store(0), []).list_feature_services()
    service = listed["feature_services"][SERVICE]
    assert service["description"] == "What the fraud agent reads." and service["entity_key"] == "user_id"
    features = {f["name"]: f for view in service["views"] for f in view["features"]}
    assert features["txn_count_5m"]["type"] == "int" and features["txn_count_5m"]["description"]
    assert listed["memory_views"] == ["tickets"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.get_context(), "nothing to fetch"),
        (lambda t: t.get_features([]), "at least one entity"),
        (lambda t: t.get_features(["u1"], "no_such_service"), "unknown feature service 'no_such_service'"),
        (lambda t: t.search_memory("x", memory_view="nope"), "unknown memory view 'nope'; known: tickets"),
        (lambda t: t.wait_until_fresh(["u1"], "2026-12-01T10:00:00"), "has no time zone"),
        (lambda t: t.wait_until_fresh(["u1"], "yesterday"), "ISO 8601"),
        (lambda t: t.feature_service_schema("nope"), "unknown feature service 'nope'; known: fraud_features"),
    ],
)
def test_bad_arguments_raise_one_readable_line(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LivectxError, match=message) as raised:
        call(_tools(_Store(0), []))
    assert "\n" not in str(raised.value)


def test_wait_until_fresh_polls_until_the_features_reach_the_event_time() -> None:
    store, sleeps = _Store(0), []
    result = _tools(store, sleeps).wait_until_fresh(["u1"], 4_000, timeout_ms=10_000)
    # reads see newest 1 s, 2 s, 3 s, 4 s: fresh on the fourth, after three bounded waits
    assert result["fresh"] and result["behind"] == [] and store.reads == 4 and len(sleeps) == 3
    assert result["features"]["u1"]["txn_count_5m"] == 3


def test_wait_until_fresh_gives_up_at_its_timeout_and_names_who_is_behind() -> None:
    store = _Store(0)
    tools = _tools(store, [])
    result = tools.wait_until_fresh(["u1", "u2"], "2999-01-01T00:00:00Z", timeout_ms=30)
    assert not result["fresh"] and result["behind"] == ["u1", "u2"] and result["waited_ms"] >= 30


class FrameworkToolError(Exception):
    pass


def test_a_livectx_error_becomes_the_frameworks_tool_error_and_a_crash_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def tool(kind: str) -> str:
        """A tool."""
        if kind == "bad":
            raise LivectxError("give at least one entity id")
        if kind == "bug":
            raise KeyError("oops")
        return kind

    wrapped = livectx_errors_as(FrameworkToolError, tool, crashes=logging.getLogger("test.tools"))
    assert wrapped("ok") == "ok" and wrapped.__name__ == "tool" and wrapped.__doc__ == "A tool."
    with pytest.raises(FrameworkToolError, match=r"^give at least one entity id$"):
        wrapped("bad")
    with caplog.at_level(logging.ERROR), pytest.raises(KeyError):
        wrapped("bug")
    assert "tool tool crashed" in caplog.text
    with pytest.raises(KeyError):
        livectx_errors_as(FrameworkToolError, tool)("bug")  # without a logger: just propagates
