"""Runs the streaming feature engine: ``livectx ingest run features``.

Guarantees (see :mod:`.engine` and :mod:`.checkpoint`):
- exactly-once (default): online rows, window state and input offsets commit in one fenced Redis
  transaction, after dead letters, late events and offline files were acknowledged; a crash at any point
  leaves online values equal to a single clean run.
- at-least-once: the same writes without the transaction and fencing (cheaper; a crash or a zombie
  worker mid-commit can count a batch twice).
- A restart restores window state from Redis and resumes at the offsets stored with it; N workers in one
  consumer group share partitions and a rebalance moves the state with them (it lives in Redis).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livectx.cdc.changelog import ChangelogGroup
from livectx.consuming import CaughtUp, GroupLag
from livectx.errors import LivectxError
from livectx.features.incremental import WindowRow
from livectx.features.spec import FeatureGroup
from livectx.kafka import producer, require_reachable
from livectx.prometheus import serve_metrics
from livectx.prometheus_targets import register_target, unregister_target
from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.topics import LATE_EVENTS
from livectx.wire import SchemaCache
from livectx_ingest.streaming.cadence import COMMIT_INTERVAL_S, MAX_BATCH
from livectx_ingest.streaming.engine import COLUMNAR_MIN, FeatureEngine
from livectx_ingest.streaming.engine_metrics import EngineMetrics
from livectx_ingest.streaming.late import LateEvents
from livectx_ingest.streaming.offline import OfflineRows
from livectx_ingest.streaming.stages import StageClock

log = logging.getLogger(__name__)
DEFAULT_GROUP = "livectx-features"
#: Freshness samples kept for the worker's closing figures (a uniform sample once more rows were written).
SAMPLE_LIMIT = 200_000


@dataclass
class FreshnessStats:
    """Event time to online-visible, per written row, plus throughput counters."""

    rows_written: int = 0
    freshness_ms: list[float] = field(default_factory=list)
    recent_ms: list[float] = field(default_factory=list)
    #: Events processed, and seconds from the first record consumed to the last commit that made results
    #: durable (set when the worker stops; start-up and shut-down excluded): the worker's own throughput.
    events: int = 0
    events_columnar: int = 0  # of which applied as columns (see FeatureEngine)
    busy_s: float = 0.0
    _draw: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def record(self, rows_by_view: dict[str, list[WindowRow]], visible_ms: int) -> None:
        ages = [visible_ms - r.newest_event_ms for rows in rows_by_view.values() for r in rows]
        seen = self.rows_written
        self.rows_written += len(ages)
        self.recent_ms.extend(ages)
        room = SAMPLE_LIMIT - len(self.freshness_ms)
        if room > 0:
            self.freshness_ms.extend(ages[:room])
            seen, ages = seen + room, ages[room:]
        # Past the limit, a uniform reservoir (Algorithm R) of every row so far: the closing percentiles
        # stay those of the whole run while memory stays flat (a soak's RSS must not grow with its length).
        # The first sample, which benches drop as the warm-up row, is never replaced.
        draw = self._draw.randrange
        for age in ages:
            seen += 1
            slot = draw(seen)
            if 0 < slot < SAMPLE_LIMIT:
                self.freshness_ms[slot] = age

    def drain_recent(self) -> list[float]:
        recent, self.recent_ms = self.recent_ms, []
        return recent


class MetricsReporter(threading.Thread):
    """Exports the worker's freshness and consumer lag every ``interval_s``: a log line and a JSON file
    (``<state dir>/metrics/<group>-<worker>.json``) that a sidecar or node exporter can scrape."""

    def __init__(
        self,
        stats: FreshnessStats,
        lag: Callable[[], int | None],
        path: Path,
        interval_s: float = 10.0,
        close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="livectx-metrics")
        self._stats = stats
        self._lag = lag
        self._path = path
        self._interval_s = interval_s
        self._close = close
        self._done = threading.Event()

    def run(self) -> None:
        # ``close`` releases what ``lag`` uses (Kafka clients) on this thread, after its last use: a client
        # closed by another thread while this one is inside a call is how librdkafka crashes a process.
        try:
            while not self._done.wait(self._interval_s):
                self.report()
        finally:
            if self._close is not None:
                self._close()

    def stop(self) -> None:
        self._done.set()

    def report(self) -> dict[str, float | int | None]:
        from livectx.metrics import percentile

        recent = self._stats.drain_recent()
        snapshot: dict[str, float | int | None] = {
            "at_ms": int(time.time() * 1000),
            "rows_written": self._stats.rows_written,
            "rows_in_interval": len(recent),
            "freshness_p50_ms": percentile(recent, 50) if recent else None,
            "freshness_p99_ms": percentile(recent, 99) if recent else None,
            "consumer_lag": self._lag(),
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(self._path)
        log.info("feature engine: %s", snapshot)
        return snapshot


def run_features_worker(
    settings: Settings,
    *,
    groups: Sequence[FeatureGroup] | None = None,
    tables: Sequence[ChangelogGroup] | None = None,
    consumer_group: str = DEFAULT_GROUP,
    worker_id: str = "0",
    processing_guarantee: str = "exactly-once",
    until_caught_up: bool = False,
    topic_map: dict[str, str] | None = None,
    dead_letter_topic: str | None = None,
    late_topic: str = LATE_EVENTS,
    commit_interval_s: float = COMMIT_INTERVAL_S,
    max_batch: int = MAX_BATCH,
    write_offline: bool = True,
    on_progress: Callable[[FreshnessStats], None] | None = None,
    stop: threading.Event | None = None,
    metrics_interval_s: float = 10.0,
    columnar_min: int = COLUMNAR_MIN,
    metrics_port: int = 0,
    prometheus: bool = True,
    stages: StageClock | None = None,
) -> tuple[FreshnessStats, dict[str, int]]:
    """Run until stopped (SIGTERM/Ctrl-C, or ``stop`` set by another thread) or, with ``until_caught_up``,
    until the group has committed the end offsets its source topics had at start. Returns freshness stats
    and late-event counts per group. ``groups`` and ``tables`` (views over captured tables' rows) default to
    the repo's (with ``groups`` given, ``tables`` defaults to none). With ``metrics_port``, ``/metrics`` is served there
    (:mod:`livectx.prometheus`); ``prometheus=False`` leaves the engine's metrics out (the benchmark's
    baseline for what they cost). ``stages`` times each record's way online, stage by stage (:mod:`.stages`)."""
    from livectx.dead_letter import DeadLetterPublisher
    from livectx.kafka import consumer
    from livectx.redis_client import redis_client
    from livectx.repo import current_repo

    repo = current_repo(settings)
    if tables is None:
        tables = repo.tables if groups is None else ()
    groups = repo.groups if groups is None else groups
    if not groups and not tables:
        raise LivectxError(f"the feature repo {repo.path} declares no stream feature view: nothing to run")
    require_reachable(settings)
    from livectx_ingest.streaming.rebuild import prepare_rebuilds
    from livectx_ingest.streaming.repartition import plan_repartitions, start_repartitioners

    declared = list(groups)
    planned, repartitions = plan_repartitions([*declared, *tables], topic_map or {}, consumer_group)
    groups = [g for g in planned if isinstance(g, FeatureGroup)]
    engine_tables = [t for t in planned if isinstance(t, ChangelogGroup)]
    stats = FreshnessStats()
    side_outputs = producer(settings)
    late = LateEvents(side_outputs, late_topic)
    dead_letters = DeadLetterPublisher(
        side_outputs, dead_letter_topic or settings.kafka.dead_letter_topic, f"streaming-features/{consumer_group}"
    )

    metrics = EngineMetrics(consumer_group, lambda: engine.events_processed)
    # One writer-schema cache per worker: framed records' ids are looked up once, whatever engine reads them.
    schemas = SchemaCache.from_settings(settings)

    def on_written(rows_by_view: dict[str, list[WindowRow]], visible_ms: int, seconds: float) -> None:
        stats.record(rows_by_view, visible_ms)
        if prometheus:
            metrics.written(rows_by_view, visible_ms, seconds)
        if on_progress is not None:
            on_progress(stats)

    def make_engine(
        source: Any,
        written: Callable[[dict[str, list[WindowRow]], int, float], None] | None = None,
        tables: Sequence[ChangelogGroup] = (),
        stages: StageClock | None = None,
    ) -> FeatureEngine:
        """The worker's engine over ``source`` (its Kafka consumer, or a rebuild's cold-tier replay, which
        rebuilds windowed views only: a table view's history is its table's)."""
        return FeatureEngine(
            consumer=source,
            redis_client=redis_client(settings),
            consumer_group=consumer_group,
            groups=groups,
            feast_project=repo.project,
            topic_map=topic_map or {},
            dead_letters=dead_letters,
            late=late,
            offline=OfflineRows(settings.offline_dir, settings.data_dir / "windows", list(groups))
            if write_offline
            else None,
            exactly_once=processing_guarantee == "exactly-once",
            commit_interval_s=commit_interval_s,
            max_batch=max_batch,
            on_written=written,
            columnar_min=columnar_min,
            schemas=schemas,
            tables=tables,
            stages=stages,
        )

    prepare_rebuilds(settings, consumer_group, declared, groups, topic_map or {}, repo.project, make_engine)
    repartitioners = start_repartitioners(
        settings, list(repartitions.values()), consumer_group, worker_id, dead_letter_topic, until_caught_up
    )
    engine = make_engine(
        consumer(
            settings,
            consumer_group,
            **{
                "client.id": f"livectx-features-{worker_id}",
                # Static membership: a restarted worker (same id) takes its partitions back at once
                # instead of waiting out its dead predecessor's session; a dead one frees them in 10 s.
                "group.instance.id": f"worker-{worker_id}",
                "session.timeout.ms": 10_000,
                "fetch.wait.max.ms": 20,
                "enable.partition.eof": True,  # the end of a partition moves the position past trailing markers
                "queued.min.messages": 20_000,
            },
        ),
        on_written,
        engine_tables,
        stages,
    )
    repartitioners.on_failure = engine.stop
    metrics_server = serve_metrics(metrics_port)
    target = None
    if metrics_server is not None:  # the stack's Prometheus scrapes what registers (livectx.prometheus_targets)
        target = _register(settings, consumer_group, worker_id, metrics_server.server_port)
    group_lag = GroupLag(settings, topics=engine.topics)  # the metrics thread's own client, for the worker's life
    reporter = MetricsReporter(
        stats,
        lambda: _total_lag(group_lag, consumer_group, metrics),
        settings.stack.state_dir / "metrics" / f"{consumer_group}-{worker_id}.json",
        metrics_interval_s,
        close=group_lag.close,
    )
    reporter.start()
    watcher = None
    if until_caught_up or stop is not None:
        topics = engine.topics if until_caught_up else []
        watcher = CaughtUpWatcher(settings, consumer_group, topics, engine.stop, stop)
        watcher.start()
    try:
        in_main = threading.current_thread() is threading.main_thread()
        with stop_on_signals(engine.stop) if in_main else contextlib.nullcontext():
            engine.run()
        stats.events = engine.events_processed
        stats.events_columnar = engine.events_columnar
        if engine.first_consumed_at is not None and engine.last_committed_at is not None:
            stats.busy_s = engine.last_committed_at - engine.first_consumed_at
    finally:
        metrics.count_events()
        reporter.stop()
        if metrics_server is not None:
            unregister_target(target)
            metrics_server.shutdown()
        if watcher is not None:
            watcher.stop()
        repartitioners.stop()
    repartitioners.raise_failure()
    return stats, dict(late.counts)


def _register(settings: Settings, consumer_group: str, worker_id: str, port: int) -> Any:
    """Tell the stack's Prometheus about this worker's ``/metrics``; a failure only costs the scrape."""
    labels = {"job": "livectx-features", "consumer_group": consumer_group, "worker_id": worker_id}
    try:
        return register_target(settings, f"features-{consumer_group}-{worker_id}", port, labels)
    except OSError as exc:
        log.warning("could not register the metrics endpoint for Prometheus: %s", exc)
        return None


class CaughtUpWatcher(threading.Thread):
    """Stops the app once the consumer group has committed the end offsets the sources had at start (if
    ``topics`` are given), or when ``external`` is set.

    Probes the group's committed offsets (what a restart would resume from), so "caught up" means the
    results are durably online, not merely computed."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        topics: list[str],
        stop: Callable[[], None],
        external: threading.Event | None = None,
        poll_s: float = 0.1,
    ) -> None:
        super().__init__(daemon=True, name="livectx-caught-up")
        self._caught_up = CaughtUp.start(settings, group, topics) if topics else None
        self._stop_app = stop
        self._external = external
        self._poll_s = poll_s
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.wait(self._poll_s):
                external = self._external is not None and self._external.is_set()
                if external or (self._caught_up is not None and self._caught_up.reached_now()):
                    self._stop_app()
                    return
        finally:
            CaughtUp.close_if_any(self._caught_up)  # on the thread that probed

    def stop(self) -> None:
        self._done.set()


def _total_lag(group_lag: GroupLag, group: str, metrics: EngineMetrics) -> int | None:
    try:
        return metrics.lag(group_lag.rows(group))
    except Exception as exc:  # the group may not have committed yet
        log.debug("lag of %s unavailable: %s", group, exc)
        return None
