"""Where a backtest's window state runs: in the replaying process, or split by entity over worker processes.

:class:`ProcessSink` routes each record by crc32 of its Kafka key, so one entity's events always reach
the same worker, in replay order, and numbers every record with its position in the replay; the merged
result is sorted back into replay order. Whatever the number of workers, the scored events, their inputs
and the counts are the same as :class:`LocalSink`'s.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError
from livectx.repo.decisions import DecisionSpec
from livectx_backtest.asof import AsOfFeatures, ReplayCounts

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


class LocalSink:
    """The window state in this process."""

    def __init__(self, decision: DecisionSpec, columns: Sequence[str]) -> None:
        self.features = AsOfFeatures(decision, columns)

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        self.features.feed(batch, first_position)

    def finish(self) -> tuple[dict[str, np.ndarray], ReplayCounts]:
        return self.features.scored.arrays(), self.features.counts

    def close(self) -> None:
        pass


class ProcessSink:
    """The window state split by entity over spawned worker processes, fed Arrow IPC over pipes."""

    def __init__(self, decision: DecisionSpec, columns: Sequence[str], workers: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no inherited Kafka client threads
        self.columns = tuple(columns)
        self.pipes = []
        self.processes = []
        for _ in range(workers):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, decision, self.columns), daemon=True)
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        import numpy as np
        import pyarrow as pa

        n = len(self.pipes)
        keys = batch.column("key").to_pylist()
        owner = np.fromiter((zlib.crc32(k) % n if k else 0 for k in keys), dtype=np.int64, count=len(keys))
        positions = pa.array(np.arange(first_position, first_position + batch.num_rows, dtype=np.int64))
        batch = batch.append_column("position", positions)
        for worker, pipe in enumerate(self.pipes):
            part = batch.filter(pa.array(owner == worker))
            if part.num_rows:
                pipe.send_bytes(_ipc(part))

    def finish(self) -> tuple[dict[str, np.ndarray], ReplayCounts]:
        import numpy as np

        for pipe in self.pipes:
            pipe.send_bytes(b"")
        parts, counts = [], ReplayCounts()
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            try:
                status, payload = pipe.recv()
            except EOFError:
                raise LivectxError(f"backtest worker {process.pid} died (exit code {process.exitcode})") from None
            if status != "ok":
                raise LivectxError(f"backtest worker failed: {payload}")
            arrays, worker_counts = payload
            parts.append(arrays)
            counts.add(worker_counts)
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(merged["position"], kind="stable")
        return {k: v[order] for k, v in merged.items()}, counts

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.close()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


def _ipc(batch: pa.RecordBatch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _worker(pipe: Any, decision: DecisionSpec, columns: tuple[str, ...]) -> None:
    """A worker process: window state for its entities; replies ("ok", (arrays, counts)) or ("error", text)."""
    import pyarrow as pa

    features = AsOfFeatures(decision, columns)
    try:
        while data := pipe.recv_bytes():
            for batch in pa.ipc.open_stream(data):
                features.feed(batch, 0)
        pipe.send(("ok", (features.scored.arrays(), features.counts)))
    except Exception as exc:  # reported to the parent as one line, which raises it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
