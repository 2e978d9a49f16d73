"""``scaling``: how throughput and memory change with entities, views, worker processes and vectors.

Four sweeps, each against a baseline measured in the same run (this machine's speed varies more from
run to run than the ratios do):

1. Entity cardinality (10k, 100k, 1M users): 200k payments spread over K users (1M at 1M: each user
   once), one view, one engine process. ``events/s`` as a ratio of a raw confluent-kafka consume of the same topic,
   the worker's peak RSS, and the Redis ``used_memory`` the rows added (per entity).
2. Views (1, 4, 16 stream views on the payments topic, 10k users): events/s against one view and raw
   consume, view updates/s (events x views), peak RSS, Redis bytes per entity.
3. Worker processes (1, 2 in one consumer group, 4 partitions, 4 views): all workers' events/s together,
   against one worker.
4. Vectors (30k and 100k by default; 1M with ``-o max_vectors=1000000``): clustered 384-d unit vectors
   bulk-loaded with binary COPY, the HNSW build timed on its own (``maintenance_work_mem`` sized for the
   graph, every spare core as a parallel maintenance worker), top-10 query p50/p99 and recall@10.

The engine runs in its own spawned process per point (:mod:`livectx_benchmarks.scaling_sweeps`); the
table and plot are :mod:`livectx_benchmarks.scaling_report`'s. Options: ``--scale`` (0.01: a smoke run
of under a minute), ``-o max_entities=N``, ``-o max_vectors=N``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from livectx.kafka import admin_client, require_reachable
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply
from livectx.vectors.pgvector_store import PgVectorStore
from livectx_benchmarks import embeddings
from livectx_benchmarks.kafka_throughput import _consume
from livectx_benchmarks.result import BenchResult, BenchTable
from livectx_benchmarks.scaling_report import (
    COLUMNS,
    MAX_VECTORS,
    PARTITIONS,
    TITLES,
    WORKER_VIEWS,
    Plan,
    Point,
    add_ratios,
    figures,
    plan,
    table_rows,
    write_plot,
)
from livectx_benchmarks.scaling_sweeps import (
    aggregate,
    drop_rows,
    engine_runs,
    produce_payments,
    redis_used_mb,
)

PLOT = Path("bench-results") / "scaling.png"
Topic = Callable[[str], str]  # a new topic of the run, by name
DIM = 384  # the default model's (all-MiniLM-L6-v2) dimension


def run(
    settings: Settings, scale: float = 1.0, max_entities: float = 1e9, max_vectors: float = MAX_VECTORS
) -> BenchResult:
    require_reachable(settings)
    the_plan = plan(scale, max_entities, max_vectors)
    tag = uuid.uuid4().hex[:8]
    began = time.monotonic()
    points: list[Point] = []
    seconds: dict[str, float] = {}
    with _topics(settings, tag) as topic:
        for name, sweep in (("entities", _entities), ("views", _views), ("workers", _workers)):
            started = time.monotonic()
            points += sweep(settings, the_plan, topic, tag)
            seconds[name] = time.monotonic() - started
    started = time.monotonic()
    points += _vectors(settings, the_plan, tag)
    seconds["vectors"] = time.monotonic() - started

    result = BenchResult("scaling", figures(points))
    result.figures.update({f"{name}_sweep_s": s for name, s in seconds.items()})
    result.figures["total_s"] = time.monotonic() - began
    for sweep in COLUMNS:
        columns, rows = table_rows(points, sweep)
        result.tables.append(BenchTable(TITLES[sweep], columns, rows))
    result.notes += _notes(the_plan)
    written = write_plot(points, PLOT)
    result.notes.append(f"plot written to {written}" if written else "matplotlib missing: no plot")
    if written:  # in the JSON too, beside the figures
        result.tables.append(BenchTable("files", ["what", "path"], [["plot", str(written)]]))
    return result


@contextlib.contextmanager
def _topics(settings: Settings, tag: str) -> Iterator[Topic]:
    """``topic(name)``: a new topic of this run per name (``PARTITIONS`` partitions), all deleted at the end."""
    admin = admin_client(settings)
    made: list[str] = []

    def topic(name: str) -> str:
        full = f"livectx.bench.scaling-{name}.{tag}"
        apply(admin, [TopicSpec(full, PARTITIONS, {"retention.ms": "3600000"})])
        made.append(full)
        return full

    try:
        yield topic
    finally:
        if made:
            for future in admin.delete_topics(made).values():
                future.result(30)


def _point(
    settings: Settings, topic: str, sweep: str, value: int, views: int, workers: int, events: int, users: int, tag: str
) -> Point:
    """One engine run of ``workers`` processes with ``views`` views over ``topic``; the Redis rows it
    wrote are measured, then deleted."""
    redis_before = redis_used_mb(settings)
    measured = aggregate(engine_runs(settings, topic, views, workers, f"{tag}{sweep[:1]}{value}"), events)
    redis_mb = redis_used_mb(settings) - redis_before
    drop_rows(settings, tag, users)
    return Point(sweep, value, {**measured, "redis_mb": redis_mb, "redis_bytes_per_entity": redis_mb * 2**20 / users})


def _with_raw(points: list[Point], raw_per_s: float) -> list[Point]:
    """``points`` with their events/s as a ratio of a raw consume of the same topic, measured just before."""
    for p in points:
        p.metrics["raw_consume_per_s"] = raw_per_s
        p.metrics["ratio_to_raw"] = p.metrics["events_per_s"] / raw_per_s
    return points


def _entities(settings: Settings, the_plan: Plan, topic: Topic, tag: str) -> list[Point]:
    points = []
    for k in the_plan.entities:
        name = topic(f"entities-{k}")
        events = produce_payments(settings, name, the_plan.events_for(k), k, tag)
        raw_per_s = events / _consume(settings, name, events)
        points += _with_raw([_point(settings, name, "entities", k, 1, 1, events, k, tag)], raw_per_s)
    add_ratios(points)
    return points


def _views(settings: Settings, the_plan: Plan, topic: Topic, tag: str) -> list[Point]:
    name = topic("views")
    events = produce_payments(settings, name, the_plan.view_events, the_plan.view_entities, tag)
    raw_per_s = events / _consume(settings, name, events)
    points = [_point(settings, name, "views", v, v, 1, events, the_plan.view_entities, tag) for v in the_plan.views]
    for p in points:
        p.metrics["view_updates_per_s"] = p.metrics["events_per_s"] * p.value
    add_ratios(points)
    return _with_raw(points, raw_per_s)


def _workers(settings: Settings, the_plan: Plan, topic: Topic, tag: str) -> list[Point]:
    name = topic("workers")
    events = produce_payments(settings, name, the_plan.worker_events, the_plan.worker_entities, tag)
    raw_per_s = events / _consume(settings, name, events)
    points = [
        _point(settings, name, "workers", w, WORKER_VIEWS, w, events, the_plan.worker_entities, tag)
        for w in the_plan.workers
    ]
    add_ratios(points)
    return _with_raw(points, raw_per_s)


def _vectors(settings: Settings, the_plan: Plan, tag: str) -> list[Point]:
    points = []
    for count in the_plan.vectors:
        stores: list[PgVectorStore] = []
        try:
            with _build_settings(count):
                q = embeddings._query(settings, f"bench_scale_{tag}_{count}", count, DIM, stores)
            size = _relation_bytes(settings, stores[0].index)
        finally:
            for store in stores:
                store.drop()
                store.close()
        metrics = {
            "copy_s": q["copy_s"],
            "index_s": q["index_s"],
            "query_p50_ms": q["p50"],
            "query_p99_ms": q["p99"],
            "recall_at_10": q["recall"],
            "postgres_mb": size / 2**20,
        }
        points.append(Point("vectors", count, metrics))
    add_ratios(points)
    return points


def _relation_bytes(settings: Settings, table: str) -> int:
    """The table's size on disk with its indexes (the vectors, the HNSW graph, the primary key)."""
    import psycopg

    with psycopg.connect(settings.pgvector_dsn, connect_timeout=5) as conn:
        return int(conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0])


@contextlib.contextmanager
def _build_settings(count: int) -> Iterator[None]:
    """The HNSW build's session settings, through libpq's ``PGOPTIONS`` for the store's connection:
    ``maintenance_work_mem`` large enough for the graph to be built in memory (~4 KiB a 384-d vector with
    m=16; a build that outgrows it goes on on disk, several times slower), and one parallel maintenance
    worker per spare core."""
    mem_mb = max(1024, count * 4 // 1024)
    workers = max(0, min(7, (os.cpu_count() or 1) - 1))
    previous = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"-c maintenance_work_mem={mem_mb}MB -c max_parallel_maintenance_workers={workers}"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = previous


def _notes(the_plan: Plan) -> list[str]:
    return [
        f"entities: {the_plan.entity_events:,} payments over K users (K where K is more: each user once), "
        "one view, one engine process",
        f"views: {the_plan.view_events:,} payments over {the_plan.view_entities:,} users; copies of the "
        "example's per-user 5-minute view (count, max)",
        f"workers: {the_plan.worker_events:,} payments over {the_plan.worker_entities:,} users, {PARTITIONS} "
        f"partitions, {WORKER_VIEWS} views; events/s = all events / the longest worker's busy span",
        f"vectors: {', '.join(f'{v:,}' for v in the_plan.vectors)} clustered {DIM}-d unit vectors, 300 queries; "
        "1M on request (-o max_vectors=1000000: its load and HNSW build alone took ~10 minutes on 2 cores, see "
        "docs/benchmarks-scaling.md)",
        f"machine: {os.cpu_count()} cores, shared with the stack (Kafka, Redis, Postgres)",
    ]
