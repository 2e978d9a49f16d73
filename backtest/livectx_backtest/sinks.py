"""Where a backtest's window state runs: in the replaying process, or split by entity over worker processes.

:class:`ProcessSink` routes each record by crc32 of its Kafka key, so one entity's events always reach
the same worker, in replay order, and numbers every record with its position in the replay; the merged
result is sorted back into replay order. Whatever the number of workers, the scored events, their inputs
and the counts are the same as :class:`LocalSink`'s.

Given the versions (``scorers``), the workers also score their events as they go, in blocks, while the
replay goes on: scoring then overlaps the replay instead of following it, and the input matrix never
crosses a pipe. A row's score does not depend on its block, so the scores are those of scoring at the end.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import tempfile
import threading
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError
from livectx.repo.decisions import DecisionSpec
from livectx_backtest.asof import AsOfFeatures, ReplayCounts
from livectx_backtest.scoring import SCORE_BLOCK, predict

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from livectx.repo.compiled import Repo

#: A version as a worker scores it: its ref, its model and where its inputs are in a row (``scoring.picks``).
Scorer = tuple[str, Any, list[int]]
Finished = tuple[dict[str, "np.ndarray"], ReplayCounts, dict[str, "np.ndarray"] | None]


class LocalSink:
    """The window state in this process."""

    def __init__(self, decision: DecisionSpec, columns: Sequence[str]) -> None:
        self.features = AsOfFeatures(decision, columns)

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        self.features.feed(batch, first_position)

    def finish(self) -> Finished:
        """The scored events, the counts, and no scores (the caller scores the rows)."""
        return self.features.scored.arrays(), self.features.counts, None

    def close(self) -> None:
        pass


class ProcessSink:
    """The window state split by entity over spawned worker processes, fed Arrow IPC over pipes."""

    def __init__(
        self,
        decision: DecisionSpec,
        columns: Sequence[str],
        workers: int,
        scorers: Sequence[Scorer] = (),
        repo: Repo | None = None,
    ) -> None:
        """``repo``: the compiled repo (default: the current one), handed to the workers so that they do not
        load it again (Feast's import alone takes seconds)."""
        import multiprocessing

        from livectx.repo import current_repo
        from livectx.repo.snapshot import write_snapshot

        context = multiprocessing.get_context("spawn")  # no inherited Kafka client threads
        self.columns = tuple(columns)
        self.pipes = []
        self.processes = []
        # The repo and the models go through a file: as spawn arguments (megabytes through the start pipe)
        # every start would block until its worker, still importing, has read them all.
        self._start = tempfile.NamedTemporaryFile(prefix="livectx-backtest-", suffix=".pickle")  # noqa: SIM115
        write_snapshot(repo or current_repo(), self._start)
        pickle.dump(list(scorers), self._start)
        self._start.flush()
        for _ in range(workers):
            parent, child = context.Pipe()
            args = (child, decision, self.columns, self._start.name)
            process = context.Process(target=_worker, args=args, daemon=True)
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)
        # A sender thread per worker, so the replay goes on while a worker is still starting (its imports and
        # the feature repo take seconds) or busy: up to QUEUED batch parts wait per worker.
        self._senders = [_Sender(pipe) for pipe in self.pipes]

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        import numpy as np
        import pyarrow as pa

        n = len(self.pipes)
        keys = batch.column("key").to_pylist()
        owner = np.fromiter((zlib.crc32(k) % n if k else 0 for k in keys), dtype=np.int64, count=len(keys))
        positions = pa.array(np.arange(first_position, first_position + batch.num_rows, dtype=np.int64))
        batch = batch.append_column("position", positions)
        for worker, sender in enumerate(self._senders):
            part = batch.filter(pa.array(owner == worker))
            if part.num_rows:
                sender.put(_ipc(part))

    def finish(self) -> Finished:
        """The scored events in replay order, the counts, and each version's scores (``None`` without
        scorers: the caller scores the rows)."""
        import numpy as np

        for sender in self._senders:
            sender.put(b"")  # the end
        for sender in self._senders:
            sender.join()
        parts, counts, scored = [], ReplayCounts(), []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            try:
                status, payload = pipe.recv()
            except EOFError:
                raise LivectxError(f"backtest worker {process.pid} died (exit code {process.exitcode})") from None
            if status != "ok":
                raise LivectxError(f"backtest worker failed: {payload}")
            arrays, worker_counts, worker_scores = payload
            parts.append(arrays)
            scored.append(worker_scores)
            counts.add(worker_counts)
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(merged["position"], kind="stable")
        scores = None
        if scored[0] is not None:
            scores = {ref: np.concatenate([s[ref] for s in scored])[order] for ref in scored[0]}
        return {k: v[order] for k, v in merged.items()}, counts, scores

    def close(self) -> None:
        self._start.close()  # deletes the file
        for sender in self._senders:
            sender.stop()
        for pipe in self.pipes:
            pipe.close()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


class _Sender:
    """Sends one worker its batch parts from a thread of its own, in order; a failed send (the worker died)
    is raised by the next :meth:`put` or by :meth:`join`."""

    QUEUED = 64

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUED)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="livectx-backtest-sender", daemon=True)
        self.thread.start()

    def put(self, data: bytes) -> None:
        while self.error is None:
            try:
                self.queue.put(data, timeout=0.5)
                return
            except queue.Full:
                continue
        raise LivectxError(f"a backtest worker stopped taking records: {self.error}")

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise LivectxError(f"a backtest worker stopped taking records: {self.error}")

    def stop(self) -> None:
        """On close: let the thread end (it drops what still waits)."""
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)

    def _run(self) -> None:
        try:
            while (data := self.queue.get()) is not None:
                self.pipe.send_bytes(data)
                if not data:
                    return
        except (OSError, ValueError) as exc:  # a broken or closed pipe
            self.error = exc


def _ipc(batch: pa.RecordBatch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _worker(pipe: Any, decision: DecisionSpec, columns: tuple[str, ...], start: str) -> None:
    """A worker process: window state for its entities, and with scorers each version's scores of its
    events, in blocks as they come; replies ("ok", (arrays, counts, scores)) or ("error", text).

    The file ``start`` holds the compiled repo, then the scorers, pickled by this run's parent process."""
    import pyarrow as pa

    from livectx.repo.snapshot import read_snapshot

    try:
        with open(start, "rb") as file:
            repo = read_snapshot(file)
            scorers: list[Scorer] = pickle.load(file)
        features = AsOfFeatures(decision, columns, repo=repo)
        scores = _Scores(scorers)
        while data := pipe.recv_bytes():
            for batch in pa.ipc.open_stream(data):
                features.feed(batch, 0)
            scores.take(features.scored.rows, SCORE_BLOCK)
        scores.take(features.scored.rows, 1)
        arrays = features.scored.arrays()
        if scorers:
            del arrays["rows"]  # scored here: the matrix need not cross the pipe
        pipe.send(("ok", (arrays, features.counts, scores.result() if scorers else None)))
    except Exception as exc:  # reported to the parent as one line, which raises it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


class _Scores:
    """A worker's scores so far: every version scores the rows not scored yet, once at least ``block`` wait.
    One thread per worker (the replaying process and the other worker share the machine's cores)."""

    def __init__(self, scorers: list[Scorer]) -> None:
        self.scorers = scorers
        self.done = 0
        self.parts: dict[str, list[np.ndarray]] = {ref: [] for ref, _model, _picks in scorers}

    def take(self, rows: list[list[float]], block: int) -> None:
        import numpy as np
        from threadpoolctl import threadpool_limits

        if not self.scorers or len(rows) - self.done < block:
            return
        matrix = np.asarray(rows[self.done :], dtype=np.float64)
        with threadpool_limits(1):
            for ref, model, picks in self.scorers:
                self.parts[ref].append(predict(model, matrix[:, picks]))
        self.done = len(rows)

    def result(self) -> dict[str, np.ndarray]:
        import numpy as np

        return {ref: np.concatenate(parts) if parts else np.zeros(0) for ref, parts in self.parts.items()}
