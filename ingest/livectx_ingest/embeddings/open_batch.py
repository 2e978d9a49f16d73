"""The open micro-batch, shared by the consumer thread (adds records) and the embed thread (takes batches).

One lock guards the batch, the flush request and the numbering of taken batches together, so "nothing is
open and nothing is in flight" (:meth:`OpenBatch.settled`, what a drain waits for) is never seen between a
take and the count of that take.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from livectx_ingest.embeddings.batcher import MicroBatcher
from livectx_ingest.embeddings.batches import Consumed
from livectx_ingest.embeddings.commits import CommitLedger


class OpenBatch:
    """Closes at N records or T seconds after its first record (:class:`MicroBatcher`), or at once while a
    flush is requested (stop, rebalance). While the embed thread is busy the next batch keeps filling, so
    under load batches are full (throughput) and under light load a text waits at most T (freshness)."""

    def __init__(self, batcher: MicroBatcher[Consumed], ledger: CommitLedger) -> None:
        self._cond = threading.Condition()
        self._batcher = batcher
        self._ledger = ledger
        self._flush = False  # take the open batch now, ready or not

    def __len__(self) -> int:
        with self._cond:
            return len(self._batcher)

    def add(self, item: Consumed) -> None:
        """A record fetched before a pause took effect may overflow the batch a little: kept, never dropped."""
        with self._cond:
            self._batcher.add(item)
            self._cond.notify_all()

    def room(self, wait_s: float) -> int:
        """Records the batch still takes; when full, waits up to ``wait_s`` for the embed thread to take it."""
        with self._cond:
            if not self._batcher.room:
                self._cond.wait(wait_s)
            return self._batcher.room

    def take(self, closed: threading.Event) -> tuple[int, list[Consumed]] | None:
        """Blocks until the batch is ready (or flushed); returns its place in the commit order and its
        records, or ``None`` once ``closed`` is set (what is open then is re-read after a restart)."""
        with self._cond:
            while not closed.is_set() and not (self._batcher.ready() or (self._flush and len(self._batcher))):
                self._cond.wait(self._batcher.time_left() or 0.5)
            if closed.is_set():
                return None
            items = self._batcher.take()
            seq = self._ledger.begin()
            self._cond.notify_all()  # room again for the consumer thread
            return seq, items

    @contextlib.contextmanager
    def flushing(self) -> Iterator[None]:
        """Take the open batch at once, ready or not, while the block runs."""
        with self._cond:
            self._flush = True
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._flush = False

    def settled(self) -> bool:
        """Nothing open and every taken batch committed: a drain is done."""
        with self._cond:
            return not len(self._batcher) and self._ledger.in_flight == 0

    def wake(self) -> None:
        """Let a waiting embed thread see that the worker closed."""
        with self._cond:
            self._cond.notify_all()
