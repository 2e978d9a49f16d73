"""How the transactional loop takes its batches, with a fake consumer (no broker): a batch that waits to
fill, or, for a latency-bound handler, the first record and whatever is queued beside it."""

from __future__ import annotations

from typing import Any

from livectx.settings import Settings
from livectx.transactional import TransactionalLoop


class _Queue:
    """A consumer's local queue: ``consume(n, timeout)`` as librdkafka answers it (all it asks is recorded)."""

    def __init__(self, queued: int) -> None:
        self.queued, self.calls = queued, []

    def consume(self, n: int, timeout: float) -> list[Any]:
        self.calls.append((n, timeout))
        taken = min(n, self.queued)
        self.queued -= taken
        return [object()] * taken


def _loop(fill_wait_s: float, queue: _Queue) -> TransactionalLoop:
    loop = TransactionalLoop(
        Settings(), name="t", topics=["t"], consumer_group="g", worker_id="0", handle=lambda _m, _p: None,
        batch_size=50, fill_wait_s=fill_wait_s,
    )  # fmt: skip
    loop._consumer = queue  # type: ignore[assignment]  # the fake in place of librdkafka's
    return loop


def test_a_batch_waits_up_to_its_fill_time_by_default() -> None:
    queue = _Queue(queued=120)
    assert len(_loop(0.1, queue)._next_batch()) == 50 and queue.calls == [(50, 0.1)]


def test_without_a_fill_wait_the_first_record_brings_what_is_queued_beside_it() -> None:
    queue = _Queue(queued=7)
    loop = _loop(0, queue)
    assert len(loop._next_batch()) == 7 and queue.calls == [(1, 0.1), (49, 0)]  # never waits for the other 43
    queue.queued = 500
    assert len(loop._next_batch()) == 50  # under a backlog: full batches
    queue.queued, queue.calls = 0, []
    assert loop._next_batch() == [] and queue.calls == [(1, 0.1)]  # idle: one bounded wait, no second call
