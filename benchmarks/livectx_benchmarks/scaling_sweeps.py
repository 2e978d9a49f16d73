"""``bench scaling``'s feature-engine sweeps: entities, views and worker processes.

Every point runs the engine as production does, in its own process (spawned, ``run_features_worker``
until its consumer group has committed the topic's end), so the peak RSS reported is the worker's alone,
not this bench's with its producer buffers and numpy arrays. The children import everything, say they
are ready, and start consuming together on one signal, so two workers join their group at once instead
of one reading half the topic before the other has imported Feast.

Events are the live feeders' payments (:func:`livectx_benchmarks.payments.payment`, formatted, not built
through the model: producing a million of them takes seconds, where a pydantic event per record ran at
~5,000/s here, longer than the engine takes to read them). All events of a run carry the same event
time, so every entity holds one open window: the state an engine carries for K entities active inside
one window, which is what grows with K.
"""

from __future__ import annotations

import dataclasses
import queue
import resource
import shutil
import time
from collections.abc import Iterable
from typing import Any

from livectx_ingest.streaming.worker import run_features_worker

from livectx.features.redis_layout import FeastRedisLayout
from livectx.features.spec import FeatureGroup
from livectx.kafka import producer
from livectx.redis_client import redis_client
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx_benchmarks.children import Children
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.features import _produce, payment_groups
from livectx_benchmarks.payments import now_us, payment

READY_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 600.0


def view_copies(count: int, tag: str) -> tuple[FeatureGroup, ...]:
    """``count`` copies of the example's first payment view (per user, 5-minute tumbling count and max),
    each under its own name: views that share the source topic and entity, as several teams' views on
    one topic would, and land in the same Redis hash per user as Feast lays them out."""
    base = payment_groups()[0]
    return tuple(dataclasses.replace(base, name=f"scale_{tag}_{i}") for i in range(count))


def user_ids(tag: str, entities: int) -> Iterable[str]:
    return (f"{tag}-u{i}" for i in range(entities))


def produce_payments(settings: Settings, topic: str, count: int, entities: int, tag: str) -> int:
    """``count`` payments over ``entities`` users (round robin) to ``topic``; returns ``count``."""
    made_us = now_us()  # one event time for the whole run (see the module docstring)
    p = producer(settings)
    for n in range(count):
        _produce(p, topic, *payment(f"{tag}-u{n % entities}", n, made_us))
        if n % 20_000 == 0:
            p.poll(0)
    if p.flush(120):
        raise RuntimeError(f"payments for {topic} were not all delivered")
    return count


def engine_runs(settings: Settings, topic: str, views: int, workers: int, tag: str) -> list[dict[str, float]]:
    """``workers`` engine processes in one new consumer group on ``topic`` with ``views`` views, until the
    group has committed its end: each child's events, busy seconds and peak RSS."""
    children = Children("the scaling bench", f"livectx-scaling-{tag}-")
    ready, go, results = children.spawn.Queue(), children.spawn.Event(), children.spawn.Queue()
    group = f"bench-scaling-{tag}"
    try:
        for w in range(workers):
            children.process(f"w{w}", engine_child, topic, views, group, f"w{w}", tag, ready, go, results)
        _collect(children, ready, workers, READY_TIMEOUT_S, "did not start")
        go.set()
        return _collect(children, results, workers, RUN_TIMEOUT_S, "did not finish")
    finally:
        children.end_all()
        shutil.rmtree(children.logs, ignore_errors=True)  # spawned children log to this bench's stderr


def _collect(children: Children, q: Any, count: int, timeout_s: float, failure: str) -> list[Any]:
    """``count`` messages from ``q``; raises as soon as a child has died without sending its own."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count:
        try:
            got.append(q.get(timeout=1))
            continue
        except queue.Empty:
            pass
        failed = [n for n, c in children.running.items() if c.exitcode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            raise RuntimeError(f"scaling bench worker {failed or 'process'} {failure} (see its output above)")
    return got


def engine_child(topic: str, views: int, group: str, worker_id: str, tag: str, ready: Any, go: Any, out: Any) -> None:
    """A spawned engine process: import and build everything, say ready, wait for ``go``, run to the end."""
    from livectx.settings import get_settings

    settings = get_settings()
    current_repo(settings)
    groups = view_copies(views, tag)
    ready.put(worker_id)
    go.wait(READY_TIMEOUT_S)
    stats, _late = run_features_worker(
        settings,
        groups=groups,
        consumer_group=group,
        worker_id=worker_id,
        until_caught_up=True,
        topic_map={TRANSACTIONS: topic},
        write_offline=False,
        dead_letter_topic=f"livectx.bench.dlq.{tag}",
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out.put({"events": float(stats.events), "busy_s": stats.busy_s, "rss_peak_mb": peak_mb})


def aggregate(runs: list[dict[str, float]], expected: int) -> dict[str, float]:
    """The processes' events/s together: all events over the longest busy span (they start on one signal,
    so their spans overlap), and the largest peak RSS of one process."""
    events = sum(r["events"] for r in runs)
    if events != expected:
        raise RuntimeError(f"the engine processed {events:.0f} of {expected} benchmark events")
    return {
        "events_per_s": events / max(r["busy_s"] for r in runs),
        "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
    }


def redis_used_mb(settings: Settings) -> float:
    """Redis ``used_memory`` in MiB (a single node; a cluster's first node answers for itself only)."""
    info = redis_client(settings).info("memory")
    return float(info["used_memory"]) / 2**20


def drop_rows(settings: Settings, tag: str, entities: int) -> None:
    """Delete the run's users' online rows (one Feast hash per user), so the next point's Redis growth is
    its own and the user's Redis is left as it was."""
    layout = FeastRedisLayout(current_repo(settings).project, payment_groups()[0])
    client = redis_client(settings)
    pipe = client.pipeline(transaction=False)
    for i, user in enumerate(user_ids(tag, entities), 1):
        pipe.unlink(layout.redis_key(user))
        if i % 10_000 == 0:
            pipe.execute()
    pipe.execute()
