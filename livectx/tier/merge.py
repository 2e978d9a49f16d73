"""k-way merge of per-partition record streams by event time.

Each input stream stays in its own (offset) order; across streams the next rows come from the stream
whose head has the smallest event time (ties: the earlier stream). When the inputs are sorted by event
time the output is too; when a partition holds a late event, that event keeps its place in its
partition, exactly as a streaming job reading all partitions in event time would see it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

WINDOW = 4096  # rows looked ahead at once when a stream's head may be emitted as a run


class _Head:
    """A stream's current batch and the position of its next row."""

    def __init__(self, stream: Iterator[pa.RecordBatch]) -> None:
        self.stream = stream
        self.batch: pa.RecordBatch | None = None
        self.times: np.ndarray | None = None
        self.row = 0

    def advance(self) -> bool:
        """Move to the next non-empty batch; False when the stream is exhausted."""
        for batch in self.stream:
            if batch.num_rows:
                self.batch = batch
                self.times = batch.column("event_time").cast("int64").to_numpy()
                self.row = 0
                return True
        return False


def merge_by_event_time(streams: Sequence[Iterator[pa.RecordBatch]], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Merge ``streams`` (each in its own order) into batches of ``batch_size`` rows by event time."""

    heads = [_Head(s) for s in streams]
    heap: list[tuple[int, int]] = [(int(h.times[0]), i) for i, h in enumerate(heads) if h.advance()]  # type: ignore[index]
    heapq.heapify(heap)
    pending: list[pa.RecordBatch] = []
    rows = 0
    while heap:
        _time, i = heapq.heappop(heap)
        head = heads[i]
        assert head.batch is not None and head.times is not None
        # Emit this stream's rows as long as they are not later than every other stream's head.
        window = head.times[head.row : head.row + min(WINDOW, batch_size - rows)]
        if heap:
            limit, other = heap[0]
            fits = window <= limit if i < other else window < limit
            count = int(fits.argmin()) if not fits.all() else len(window)
            count = max(count, 1)  # the popped row itself is the smallest: always emitted
        else:
            count = len(window)
        pending.append(head.batch.slice(head.row, count))
        rows += count
        head.row += count
        if head.row < head.batch.num_rows or head.advance():
            heapq.heappush(heap, (int(head.times[head.row]), i))
        if rows >= batch_size:
            yield _combine(pending)
            pending, rows = [], 0
    if pending:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    import pyarrow as pa

    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
