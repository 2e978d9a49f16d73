"""Budgets that mean what they say: a part follows the call's budget unless its timeout is set explicitly; a
small budget still returns on time; a warm-up pays the first call's costs (no services: injected parts)."""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
from livectx_agents.context import ContextClient, ContextConfig

from livectx.vectors.records import SearchHit
from tests.example import REPO

SERVICE = "fraud_features"
HIT = SearchHit("tickets:1", 0.9, "card declined", "support_ticket", "default", "billing", 1)


def _rows(entities: list[str], _service: str) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for group in REPO.service_groups(SERVICE):
        rows[group.event_time_field] = [1_000] * len(entities)
        rows.update({f.name: [1] * len(entities) for f in group.features})
    return rows


def _client(search, read=_rows, config: ContextConfig | None = None) -> ContextClient:  # type: ignore[no-untyped-def]
    return ContextClient(
        read,
        search,
        lambda _text: np.zeros(3, dtype=np.float32),
        config=config or ContextConfig(),
        services={SERVICE: REPO.service_groups(SERVICE)},
        memory_sources={},
    )


def _slow(release: threading.Event, answered: threading.Event):  # type: ignore[no-untyped-def]
    """A search that answers once ``release`` is set (a dependency slower than the default budget)."""

    def search(_vector, _k, _where):  # type: ignore[no-untyped-def]
        release.wait(10)
        answered.set()
        return [HIT]

    return search


def test_a_large_budget_gives_the_vector_search_the_time_it_needs() -> None:
    release, answered = threading.Event(), threading.Event()
    timer = threading.Timer(0.2, release.set)  # the store answers after 200 ms: four times the default budget
    client = _client(_slow(release, answered))
    try:
        timer.start()
        context = client.get_context([], query_text="my card was declined", budget_ms=5_000)
        assert answered.is_set() and context.degraded == [] and context.similar == [HIT]
    finally:
        timer.cancel()
        release.set()
        client.close()


def test_a_small_budget_returns_on_time_and_names_the_part_left_out() -> None:
    release, answered = threading.Event(), threading.Event()
    client = _client(_slow(release, answered))
    try:
        context = client.get_context(["u1"], SERVICE, query_text="declined", budget_ms=30)
        assert not answered.is_set()  # returned on its budget while the store was still stuck
        # what was left of the 30 ms once the features were read
        (degraded,) = context.degraded
        left = re.fullmatch(r"vectors: timed out after (\d+) ms", degraded)
        assert context.similar == [] and left is not None and int(left.group(1)) <= 30
        assert context.features["u1"]  # the fast part was still served
    finally:
        release.set()
        client.close()


def test_an_explicit_part_timeout_still_caps_that_part_below_the_budget() -> None:
    release, answered = threading.Event(), threading.Event()
    client = _client(_slow(release, answered), config=ContextConfig(vectors_timeout_ms=25))
    try:
        context = client.get_context([], query_text="declined", budget_ms=5_000)
        assert not answered.is_set() and context.degraded == ["vectors: timed out after 25 ms"]
    finally:
        release.set()
        client.close()


def test_a_slow_feature_read_inside_a_large_budget_is_not_reported_as_overrunning() -> None:
    release = threading.Event()
    timer = threading.Timer(0.1, release.set)

    def slow_read(entities: list[str], service: str) -> dict[str, list[Any]]:
        release.wait(10)
        return _rows(entities, service)

    client = ContextClient(
        slow_read, lambda *_a: [], lambda _t: np.zeros(3), inline_features=True,
        services={SERVICE: REPO.service_groups(SERVICE)}, memory_sources={},
    )  # fmt: skip
    try:
        timer.start()
        assert client.get_context(["u1"], SERVICE, budget_ms=5_000).degraded == []
        release.clear()
        timer = threading.Timer(0.1, release.set)
        timer.start()
        late = client.get_context(["u1"], SERVICE, budget_ms=20)  # inline: answered, but after its budget
        assert len(late.degraded) == 1 and "over its 20 ms timeout" in late.degraded[0]
    finally:
        timer.cancel()
        client.close()


def test_warm_up_runs_each_part_once_and_reports_failures_without_raising() -> None:
    embedded: list[str] = []

    def failing_read(_entities: list[str], _service: str) -> dict[str, list[Any]]:
        raise ConnectionError("redis down")

    client = ContextClient(
        failing_read, lambda *_a: [HIT], lambda text: embedded.append(text) or np.zeros(3),  # type: ignore[func-returns-value]
        services={SERVICE: REPO.service_groups(SERVICE)}, memory_sources={},
    )  # fmt: skip
    try:
        assert client.warm is None
        report = client.warm_up()
        assert embedded == ["warm up"] and "ms" in report["vectors"]
        assert report["features"] == {"error": "ConnectionError: redis down"} and client.warm == report
    finally:
        client.close()
