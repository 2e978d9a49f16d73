"""The embedding worker's micro-batch closes at N items or T seconds, whichever first."""

from __future__ import annotations

import pytest
from livectx_ingest.embeddings.batcher import MicroBatcher


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_closes_at_n_items() -> None:
    batcher: MicroBatcher[int] = MicroBatcher(3, 10.0, clock=FakeClock())
    for item in (1, 2):
        batcher.add(item)
    assert not batcher.ready() and batcher.room == 1
    batcher.add(3)
    assert batcher.ready() and batcher.take() == [1, 2, 3]
    assert len(batcher) == 0 and batcher.time_left() is None and not batcher.ready()


def test_closes_at_the_deadline_counted_from_the_first_item() -> None:
    clock = FakeClock()
    batcher: MicroBatcher[str] = MicroBatcher(100, 0.05, clock=clock)
    assert batcher.time_left() is None
    batcher.add("a")
    clock.now += 0.03
    batcher.add("b")
    assert batcher.time_left() == pytest.approx(0.02) and not batcher.ready()
    clock.now += 0.02
    assert batcher.ready() and batcher.take() == ["a", "b"]


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(0, 1.0)
