"""``livectx backtest run``: replay a time range, recompute features as of each scored event, score every version.

What is scored is the versions' *decision* (:class:`~livectx.repo.decisions.DecisionSpec`, declared in the
feature repo on their registered feature service): the events of one source, from that service's features
about each event's entity, plus the event's declared inputs.

1. The range is replayed with :func:`livectx.tier.replay.replay` (cold tier, then the broker's tail, merged
   by event time across partitions and topics); by default the topics of the sources the decision reads.
2. Each record is decoded by its ``livectx-schema`` header (bad records are counted by reason and skipped)
   and fed to the engine's window state (:mod:`livectx_backtest.asof`), which yields, per scored event, the
   model input a live agent read from the online store right after that event.
3. Every version (resolved and sha256-verified from the registry) scores the identical matrix and, when the
   decision declares a label, is judged against it (:mod:`livectx_backtest.scoring`); without a label the
   report has score distributions and the versions' agreement, no precision, recall or cost.

With ``workers > 1`` the window state is split by entity (crc32 of the record key: an entity's events always
go to the same process, in replay order) over spawned processes, which also score their events while the
main process replays (:mod:`livectx_backtest.sinks`). This
needs every source the decision reads keyed by the entity (checked before the replay starts).
The result does not depend on the number of workers. Everything in :attr:`BacktestResult.summary` is a
function of the range and the versions only; wall-clock figures live in :attr:`BacktestResult.timing`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from livectx import topics as topic_names
from livectx.errors import LivectxError
from livectx.repo.decisions import DecisionSpec
from livectx.settings import Settings
from livectx.tier.replay import ReplayStats, replay
from livectx_backtest.asof import ReplayCounts
from livectx_backtest.scoring import (
    Candidate,
    distribution,
    judge,
    load_candidates,
    picks,
    resolve_decision,
    score,
    union_columns,
)
from livectx_backtest.sinks import LocalSink, ProcessSink

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_EXAMPLES = 10
TIMELINE_BINS = 48
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class BacktestSpec:
    """What to backtest: model refs, the event-time range ``[start, end)`` and the topics holding it.

    ``topics`` empty: the decision's (:attr:`DecisionSpec.topics`). ``features``: the decision service, when
    it must be checked against the versions' (they name their own)."""

    models: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None
    topics: tuple[str, ...] = ()
    features: str | None = None
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
    decision: DecisionSpec
    scored: dict[str, np.ndarray]  # event_ms, id, entity and, if labelled, label (replay order)
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
        LivectxError: fewer than one model, an unknown or altered version, no decision on their feature
            service, a bad range, a gap in the tiers, a range without scored events, workers over sources
            not keyed by the entity.
    """
    if spec.start is not None and spec.end is not None and spec.start >= spec.end:
        raise LivectxError(f"--from {spec.start.isoformat()} is not before --to {spec.end.isoformat()}")
    pace = speed_factor(spec.speed)
    began = time.perf_counter()
    candidates = load_candidates(settings, spec.models, spec.models_topic)
    decision = resolve_decision(candidates, spec.features)
    spec = dataclasses.replace(spec, topics=spec.topics or decision.topics, features=decision.service)
    if spec.workers > 1:
        _check_split(decision)
    columns = union_columns(candidates)
    loaded = time.perf_counter()

    total = estimate_records(settings, spec)
    stats = ReplayStats()
    batches = replay(
        settings, list(spec.topics), start=spec.start, end=spec.end, by="time", merge_by_event_time=True,
        batch_size=spec.batch_size, stats=stats,
    )  # fmt: skip
    if spec.workers <= 1:
        sink: LocalSink | ProcessSink = LocalSink(decision, columns)
    else:  # the workers score too, while the replay goes on
        scorers = [(c.ref, c.model, picks(c, columns, len(decision.inputs))) for c in candidates]
        sink = ProcessSink(decision, columns, spec.workers, scorers)
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
        scored, counts, scores = sink.finish()
    finally:
        sink.close()
    replayed = time.perf_counter()
    if counts.records == 0:
        raise LivectxError(
            f"no records on {', '.join(spec.topics)} in {_describe_range(spec)}: nothing to backtest "
            "(`livectx tier status` shows what is archived)"
        )
    if len(scored["event_ms"]) == 0:
        raise LivectxError(
            f"no scored events (source {decision.source}) among the {counts.records:,} records "
            f"in {_describe_range(spec)}"
        )

    if scores is None:
        scores = {c.ref: score(c, scored["rows"], columns, len(decision.inputs)) for c in candidates}
    done_at = time.perf_counter()
    return BacktestResult(
        summary=summarise(spec, decision, candidates, columns, scored, scores, counts, stats),
        timing={
            "seconds": done_at - began,
            "load_models_seconds": loaded - began,
            "replay_and_features_seconds": replayed - loaded,
            "scoring_seconds": done_at - replayed,
            "events_per_s": counts.records / (done_at - began),
            "workers": float(max(spec.workers, 1)),
        },
        candidates=candidates,
        decision=decision,
        scored={k: v for k, v in scored.items() if k != "rows"},
        scores=scores,
    )


def summarise(
    spec: BacktestSpec,
    decision: DecisionSpec,
    candidates: Sequence[Candidate],
    columns: Sequence[str],
    scored: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    counts: ReplayCounts,
    stats: ReplayStats,
) -> dict[str, Any]:
    """The deterministic part of the report (floats rounded to 6 decimals); without a label, no judging."""
    labels = scored.get("label")
    flagged = {c.ref: scores[c.ref] >= c.threshold for c in candidates}
    models = []
    for c in candidates:
        judged = {} if labels is None else judge(scores[c.ref], labels, c.threshold, spec.fp_cost, spec.fn_cost)
        models.append(
            {
                "ref": c.ref,
                "artifact_sha256": c.version.artifact_sha256,
                "feature_service": c.version.feature_service,
                "feature_columns": list(c.version.feature_columns),
                **distribution(scores[c.ref], c.threshold),
                **judged,
            }
        )
    event_ms = scored["event_ms"]
    summary = {
        "decision": {
            "service": decision.service,
            "source": decision.source,
            "id": decision.id_field,
            "entity": decision.entity_key,
            "label": decision.label,
            "inputs": list(decision.inputs),
        },
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
        "scored": len(event_ms),
        "positives": None if labels is None else int(labels.sum()),
        "costs": None if labels is None else {"false_positive": spec.fp_cost, "false_negative": spec.fn_cost},
        "feature_columns": list(columns),
        "models": models,
        "differences": differences(candidates, scored, scores, flagged),
        "timeline": timeline(event_ms, labels, flagged),
    }
    return rounded(summary)


def differences(
    candidates: Sequence[Candidate],
    scored: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    flagged: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Per pair of versions: how many decisions differ, their agreement, and the first few that differ."""
    import numpy as np

    labels = scored.get("label")
    out = []
    for i, a in enumerate(candidates):
        for b in candidates[i + 1 :]:
            differ = np.flatnonzero(flagged[a.ref] != flagged[b.ref])
            examples = []
            for k in differ[:MAX_EXAMPLES]:
                example: dict[str, Any] = {
                    "id": str(scored["id"][k]),
                    "entity": str(scored["entity"][k]),
                    "event_time": iso_ms(int(scored["event_ms"][k])),
                }
                if labels is not None:
                    example["label"] = bool(labels[k])
                example[f"score_{a.ref}"] = float(scores[a.ref][k])
                example[f"score_{b.ref}"] = float(scores[b.ref][k])
                examples.append(example)
            agreement = 1.0 - len(differ) / len(flagged[a.ref])
            out.append({"a": a.ref, "b": b.ref, "count": len(differ), "agreement": agreement, "examples": examples})
    return out


def timeline(event_ms: np.ndarray, labels: np.ndarray | None, flagged: dict[str, np.ndarray]) -> dict[str, Any]:
    """Scored events, positives (when labelled) and each version's flagged events per event-time bin (what
    the decisions-over-time plot shows)."""
    import numpy as np

    lo, hi = int(event_ms.min()), int(event_ms.max()) + 1
    edges = np.linspace(lo, hi, TIMELINE_BINS + 1).astype(np.int64)
    bins = np.clip(np.searchsorted(edges, event_ms, side="right") - 1, 0, TIMELINE_BINS - 1)
    return {
        "bin_start_ms": edges[:-1].tolist(),
        "scored": np.bincount(bins, minlength=TIMELINE_BINS).tolist(),
        "positives": None
        if labels is None
        else np.bincount(bins, weights=labels, minlength=TIMELINE_BINS).astype(int).tolist(),
        "flagged": {
            ref: np.bincount(bins, weights=d, minlength=TIMELINE_BINS).astype(int).tolist()
            for ref, d in flagged.items()
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


def _check_split(decision: DecisionSpec) -> None:
    """Workers split records by their Kafka key: every source the decision reads must be keyed by its entity."""
    from livectx.repo import current_repo

    repo = current_repo()
    read = {g.event_type for g in repo.service_groups(decision.service)} | {repo.model(decision.source)}
    for source in repo.sources.values():
        if source.model in read and source.key_field != decision.entity_key:
            raise LivectxError(
                f"--workers splits records by key, and source {source.name} is keyed by {source.key_field}, not "
                f"by the decision's entity {decision.entity_key}: use --workers 1"
            )


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
