"""``livectx backtest run``: replay a time range, recompute features as of each payment, score every version.

1. The range is replayed with :func:`livectx.tier.replay.replay` (cold tier, then the broker's tail, merged
   by event time across partitions and topics).
2. Each record is decoded by its ``livectx-schema`` header (bad records are counted by reason and skipped)
   and fed to the engine's window state (:mod:`livectx_backtest.asof`), which yields, per payment, the
   fraud agent's model input as the online store held it right after that payment.
3. Every version (resolved and sha256-verified from the registry) scores the identical matrix, and is
   judged against ``Transaction.is_fraud`` (:mod:`livectx_backtest.scoring`).

With ``workers > 1`` the window state is split by user (crc32 of the record key: a user's events always
go to the same process, in replay order) over spawned processes; the main process replays and scores.
The result does not depend on the number of workers. Everything in :attr:`BacktestResult.summary` is a
function of the range and the versions only; wall-clock figures live in :attr:`BacktestResult.timing`.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from livectx import topics as topic_names
from livectx.errors import LivectxError
from livectx.settings import Settings
from livectx.tier.replay import ReplayStats, replay
from livectx_backtest.asof import AsOfFeatures, ReplayCounts
from livectx_backtest.scoring import Candidate, judge, load_candidates, score, union_columns

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: The example repo's logins and payments: what a fraud backtest replays by default.
DEFAULT_TOPICS: tuple[str, ...] = ("livectx.logins", "livectx.transactions")
MAX_EXAMPLES = 10
TIMELINE_BINS = 48
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class BacktestSpec:
    """What to backtest: model refs, the event-time range ``[start, end)`` and the topics holding it."""

    models: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None
    topics: tuple[str, ...] = DEFAULT_TOPICS
    speed: str = "max"  # "max", "realtime", or a factor such as "60x"
    fp_cost: float = 1.0
    fn_cost: float = 20.0
    models_topic: str = topic_names.MODELS
    workers: int = 1
    batch_size: int = 20_000


@dataclass
class BacktestResult:
    summary: dict[str, Any]  # deterministic: same range and versions, same bytes
    timing: dict[str, float]
    candidates: list[Candidate]
    payments: dict[str, np.ndarray]  # event_ms, txn_id, user_id, is_fraud (replay order)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # ref -> scores

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "timing": self.timing}


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (``2026-01-01``, ``2026-01-01T10:00:00Z``, ``...+02:00``); naive means UTC.

    Raises:
        LivectxError: not an ISO 8601 time.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LivectxError(
            f"{option} {value!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z or 2026-01-01)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def speed_factor(speed: str) -> float | None:
    """Event-time seconds per wall second: None for ``max`` (as fast as possible), 1 for ``realtime``.

    Raises:
        LivectxError: anything else than max, realtime or a positive factor such as 60x.
    """
    if speed == "max":
        return None
    if speed == "realtime":
        return 1.0
    try:
        factor = float(speed.removesuffix("x"))
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise LivectxError(f"--speed {speed!r}: use max, realtime or a factor such as 60x")
    return factor


def run_backtest(settings: Settings, spec: BacktestSpec, progress: Progress | None = None) -> BacktestResult:
    """Backtest ``spec.models`` on the replayed range.

    Raises:
        LivectxError: fewer than one model, an unknown or altered version, a bad range, a gap in the tiers,
            a range without payments.
    """
    if spec.start is not None and spec.end is not None and spec.start >= spec.end:
        raise LivectxError(f"--from {spec.start.isoformat()} is not before --to {spec.end.isoformat()}")
    if not spec.topics:
        raise LivectxError("give at least one --topic to replay")
    pace = speed_factor(spec.speed)
    began = time.perf_counter()
    candidates = load_candidates(settings, spec.models, spec.models_topic)
    service = candidates[0].version.feature_service
    columns = union_columns(candidates)
    loaded = time.perf_counter()

    total = estimate_records(settings, spec)
    stats = ReplayStats()
    batches = replay(
        settings, list(spec.topics), start=spec.start, end=spec.end, by="time", merge_by_event_time=True,
        batch_size=spec.batch_size, stats=stats,
    )  # fmt: skip
    sink = _LocalSink(service, columns) if spec.workers <= 1 else _ProcessSink(service, columns, spec.workers)
    done = 0
    first_ms: int | None = None
    try:
        for batch in batches:
            if pace is not None:
                first_ms = _pace(batch, first_ms, began, pace)
            sink.feed(batch, done)
            done += batch.num_rows
            if progress is not None:
                progress(done, max(total, done) if total else None)
        payments, counts = sink.finish()
    finally:
        sink.close()
    replayed = time.perf_counter()
    if counts.records == 0:
        raise LivectxError(
            f"no records on {', '.join(spec.topics)} in {_describe_range(spec)}: nothing to backtest "
            "(`livectx tier status` shows what is archived)"
        )
    if len(payments["event_ms"]) == 0:
        raise LivectxError(f"no payments among the {counts.records:,} records in {_describe_range(spec)}")

    scores = {c.ref: score(c, payments["rows"], columns) for c in candidates}
    scored = time.perf_counter()
    result = BacktestResult(
        summary=summarise(spec, candidates, columns, payments, scores, counts, stats),
        timing={
            "seconds": scored - began,
            "load_models_seconds": loaded - began,
            "replay_and_features_seconds": replayed - loaded,
            "scoring_seconds": scored - replayed,
            "events_per_s": counts.records / (scored - began),
            "workers": float(max(spec.workers, 1)),
        },
        candidates=candidates,
        payments={k: v for k, v in payments.items() if k != "rows"},
        scores=scores,
    )
    return result


def summarise(
    spec: BacktestSpec,
    candidates: Sequence[Candidate],
    columns: Sequence[str],
    payments: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    counts: ReplayCounts,
    stats: ReplayStats,
) -> dict[str, Any]:
    """The deterministic part of the report (floats rounded to 6 decimals)."""
    import numpy as np

    labels = payments["is_fraud"]
    decisions = {c.ref: scores[c.ref] >= c.threshold for c in candidates}
    models = []
    for c in candidates:
        figures = judge(scores[c.ref], labels, c.threshold, spec.fp_cost, spec.fn_cost)
        models.append(
            {
                "ref": c.ref,
                "artifact_sha256": c.version.artifact_sha256,
                "feature_service": c.version.feature_service,
                "feature_columns": list(c.version.feature_columns),
                **figures,
            }
        )
    differences = []
    for i, a in enumerate(candidates):
        for b in candidates[i + 1 :]:
            differ = np.flatnonzero(decisions[a.ref] != decisions[b.ref])
            examples = [
                {
                    "txn_id": str(payments["txn_id"][k]),
                    "user_id": str(payments["user_id"][k]),
                    "event_time": iso_ms(int(payments["event_ms"][k])),
                    "is_fraud": bool(labels[k]),
                    f"score_{a.ref}": float(scores[a.ref][k]),
                    f"score_{b.ref}": float(scores[b.ref][k]),
                }
                for k in differ[:MAX_EXAMPLES]
            ]
            differences.append({"a": a.ref, "b": b.ref, "count": len(differ), "examples": examples})
    event_ms = payments["event_ms"]
    summary = {
        "range": {
            "from": spec.start.isoformat() if spec.start else None,
            "to": spec.end.isoformat() if spec.end else None,
            "topics": list(spec.topics),
            "first_event": iso_ms(int(event_ms.min())),
            "last_event": iso_ms(int(event_ms.max())),
        },
        "events": {
            "records": counts.records,
            "from_archive": stats.cold_records,
            "from_broker": stats.hot_records,
            "by_type": dict(sorted(counts.by_type.items())),
            "ignored": dict(sorted(counts.ignored.items())),
            "bad": dict(sorted(counts.bad.items())),
            "late": counts.late,
        },
        "payments": len(labels),
        "frauds": int(labels.sum()),
        "costs": {"false_positive": spec.fp_cost, "false_negative": spec.fn_cost},
        "feature_columns": list(columns),
        "models": models,
        "differences": differences,
        "timeline": timeline(event_ms, labels, decisions),
    }
    return rounded(summary)


def timeline(event_ms: np.ndarray, labels: np.ndarray, decisions: dict[str, np.ndarray]) -> dict[str, Any]:
    """Declines per version and frauds per event-time bin (what the decisions-over-time plot shows)."""
    import numpy as np

    lo, hi = int(event_ms.min()), int(event_ms.max()) + 1
    edges = np.linspace(lo, hi, TIMELINE_BINS + 1).astype(np.int64)
    bins = np.clip(np.searchsorted(edges, event_ms, side="right") - 1, 0, TIMELINE_BINS - 1)
    return {
        "bin_start_ms": edges[:-1].tolist(),
        "payments": np.bincount(bins, minlength=TIMELINE_BINS).tolist(),
        "frauds": np.bincount(bins, weights=labels, minlength=TIMELINE_BINS).astype(int).tolist(),
        "declines": {
            ref: np.bincount(bins, weights=d, minlength=TIMELINE_BINS).astype(int).tolist()
            for ref, d in decisions.items()
        },
    }


def estimate_records(settings: Settings, spec: BacktestSpec) -> int:
    """About how many records the replay holds (archived entries overlapping the range + the broker's
    tail): the progress bar's total, never a figure of the report."""
    from livectx.tier.hot import watermarks
    from livectx.tier.manifest import Manifest
    from livectx.tier.storage import open_storage

    start_ms = None if spec.start is None else int(spec.start.timestamp() * 1000)
    end_ms = None if spec.end is None else int(spec.end.timestamp() * 1000)
    manifest = Manifest(open_storage(settings))
    total = 0
    cold_end: dict[tuple[str, int], int] = {}
    for topic in spec.topics:
        for e in manifest.current(topic):
            key = (topic, e.partition)
            cold_end[key] = max(cold_end.get(key, 0), e.end_offset)
            if (start_ms is None or e.max_event_ms >= start_ms) and (end_ms is None or e.min_event_ms < end_ms):
                total += e.records
    for key, (low, high) in watermarks(settings, spec.topics).items():
        total += max(0, high - max(low, cold_end.get(key, 0)))
    return total


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rounded(value: Any) -> Any:
    """Floats to 6 decimals, recursively: stable bytes across runs and platforms."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def _describe_range(spec: BacktestSpec) -> str:
    start = spec.start.isoformat() if spec.start else "the beginning"
    end = spec.end.isoformat() if spec.end else "the end"
    return f"[{start}, {end})"


def _pace(batch: pa.RecordBatch, first_ms: int | None, began: float, factor: float) -> int:
    """Sleep until the batch's last event is due at ``factor`` x real time (``--speed``)."""
    import pyarrow.compute as pc

    times = batch.column("event_time").cast("int64")
    first = first_ms if first_ms is not None else int(pc.min(times).as_py())
    due = (int(pc.max(times).as_py()) - first) / 1000 / factor
    wait = due - (time.perf_counter() - began)
    if wait > 0:
        time.sleep(wait)  # pacing a replay to wall time is the point of --speed realtime
    return first


# -- where the window state runs --------------------------------------------------------------------------


class _LocalSink:
    """The window state in this process."""

    def __init__(self, service: str, columns: Sequence[str]) -> None:
        self.features = AsOfFeatures(service, columns)

    def feed(self, batch: pa.RecordBatch, first_position: int) -> None:
        self.features.feed(batch, first_position)

    def finish(self) -> tuple[dict[str, np.ndarray], ReplayCounts]:
        return self.features.payments.arrays(), self.features.counts

    def close(self) -> None:
        pass


class _ProcessSink:
    """The window state split by user over spawned worker processes, fed Arrow IPC over pipes."""

    def __init__(self, service: str, columns: Sequence[str], workers: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no inherited Kafka client threads
        self.columns = tuple(columns)
        self.pipes = []
        self.processes = []
        for _ in range(workers):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, service, self.columns), daemon=True)
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


def _worker(pipe: Any, service: str, columns: tuple[str, ...]) -> None:
    """A worker process: window state for its users; replies ("ok", (arrays, counts)) or ("error", text)."""
    import pyarrow as pa

    features = AsOfFeatures(service, columns)
    try:
        while data := pipe.recv_bytes():
            for batch in pa.ipc.open_stream(data):
                features.feed(batch, 0)
        pipe.send(("ok", (features.payments.arrays(), features.counts)))
    except Exception as exc:  # reported to the parent as one line, which raises it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
