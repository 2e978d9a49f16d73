"""Riding out an online-store outage: retries with capped backoff, one line at the start and one at the end."""

from __future__ import annotations

import logging

import pytest
from livectx_ingest.streaming.store_outage import StoreOutage

from livectx.errors import NotReachableError


class Down(Exception):
    pass


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def outage(clock: FakeTime, **kwargs) -> StoreOutage:  # type: ignore[no-untyped-def]
    return StoreOutage("Redis", sleep=clock.sleep, clock=lambda: clock.now, errors=(Down,), **kwargs)


def failing(times: int):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def operation() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise Down("connection refused")
        return "done"

    return operation, calls


def test_retries_until_the_store_answers_with_capped_doubling_backoff(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeTime()
    operation, calls = failing(6)
    with caplog.at_level(logging.WARNING):
        assert outage(clock, first_s=0.1, max_s=0.5).call(operation) == "done"
    assert calls["n"] == 7
    assert clock.waits == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one when it went away, one when it came back: not one per retry
    assert "Redis unreachable (Down: connection refused)" in lines[0]
    assert "reachable again after 2.2 s (6 retries)" in lines[1]


def test_no_outage_no_log_and_no_wait(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeTime()
    with caplog.at_level(logging.WARNING):
        assert outage(clock).call(lambda: 7) == 7
    assert clock.waits == [] and caplog.records == []


def test_gives_up_with_one_readable_error_after_the_limit() -> None:
    clock = FakeTime()
    operation, _ = failing(10_000)
    with pytest.raises(NotReachableError, match=r"Redis unreachable for 10 s .*restart the worker"):
        outage(clock, first_s=1.0, max_s=1.0, give_up_s=10.0).call(operation)


def test_on_retry_runs_before_each_retry_and_other_errors_pass_through() -> None:
    clock = FakeTime()
    refreshed = []
    operation, _ = failing(2)
    assert outage(clock).call(operation, on_retry=lambda: refreshed.append(1)) == "done"
    assert refreshed == [1, 1]

    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        outage(clock).call(broken)


def test_also_adds_retryable_errors_for_one_call() -> None:
    class Moved(Exception):
        pass

    clock = FakeTime()
    calls = {"n": 0}

    def operation() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Moved("slot moved")
        return "ok"

    assert outage(clock).call(operation, also=(Moved,)) == "ok"


def test_an_answer_that_is_an_error_still_ends_the_outage(caplog: pytest.LogCaptureFixture) -> None:
    """A store back with older data answers a commit with a refusal: that ends the outage too (one line)."""
    clock = FakeTime()
    calls = {"n": 0}

    def operation() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Down("refused")
        raise LookupError("rolled back")

    with caplog.at_level(logging.WARNING), pytest.raises(LookupError):
        outage(clock).call(operation)
    assert [r.getMessage().split(" after")[0] for r in caplog.records][1:] == ["Redis reachable again"]
