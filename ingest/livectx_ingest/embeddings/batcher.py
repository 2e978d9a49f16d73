"""A micro-batch that closes at N records or T seconds after its first record, whichever comes first.

Batching is where embedding throughput comes from (one forward pass over many texts); the deadline is
what bounds freshness when traffic is light.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    def __init__(self, max_items: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_items < 1 or max_wait_s <= 0:
            raise ValueError("a micro-batch needs max_items >= 1 and max_wait_s > 0")
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._items: list[T] = []
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        if self._opened_at is None:
            self._opened_at = self._clock()
        self._items.append(item)

    @property
    def room(self) -> int:
        return max(0, self.max_items - len(self._items))

    def time_left(self) -> float | None:
        """Seconds until the open batch's deadline (``None`` when no batch is open)."""
        if self._opened_at is None:
            return None
        return max(0.0, self._opened_at + self.max_wait_s - self._clock())

    def ready(self) -> bool:
        left = self.time_left()
        return len(self._items) >= self.max_items or (left is not None and left <= 0.0)

    def take(self) -> list[T]:
        items, self._items, self._opened_at = self._items, [], None
        return items
