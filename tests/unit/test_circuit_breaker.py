"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from livectx_agents.breaker import CircuitBreaker


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_then_half_opens_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker("vectors", failure_threshold=3, reset_after_s=2.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("timeout")
    assert breaker.state == "closed"
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure("timeout")
    assert breaker.state == "open" and not breaker.allow() and breaker.last_error == "timeout"
    clock.now += 2.0
    assert breaker.state == "half_open"
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_probe_reopens_for_another_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker("features", failure_threshold=1, reset_after_s=1.0, clock=clock)
    breaker.record_failure("down")
    clock.now += 1.0
    assert breaker.allow()
    breaker.record_failure("still down")
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()
