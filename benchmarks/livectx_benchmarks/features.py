"""``features``: the streaming feature engine's throughput (as a ratio of raw consume) and freshness.

1. Throughput: N fraud-scenario payments are produced up front; a raw confluent-kafka consumer reads them
   (the baseline, same run), then the engine processes them with every transaction feature group,
   exactly-once, without the offline copy, until its group has committed the end (events/s from the
   first record consumed to the commit that made the last one durable online): ``throughput_ratio``. Twice
   more as a worker runs by default, writing the offline copy: ``default_throughput_ratio``. Then runs without and with
   the engine's Prometheus metrics, in ABBA order: ``metrics_overhead`` (the better run of each).
   The Avro run: the same payments as Avro in the Confluent wire format (the payments source's Avro twin,
   :func:`livectx.repo.schema.avro_twin`, registered in the schema registry under a bench subject; plain
   schemaless Avro when no registry answers), with its own raw-consume baseline; its runs interleave with
   the JSON runs with metrics (J A ... A J), and ``avro_vs_json`` is the ratio of the two ratios, the
   better run of each.
2. Freshness: with the engine running, payments stamped with the wall clock are produced at a sustained
   ``rate`` by another process; for every row written online, freshness = the time the checkpoint's
   commit returned (the row is visible) - the newest event time in the row.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import itertools
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livectx_ingest.streaming.stages import STAGES, StageClock
from livectx_ingest.streaming.worker import run_features_worker

from livectx import serde, wire
from livectx.errors import LivectxError
from livectx.events import Event
from livectx.kafka import admin_client, producer, require_reachable
from livectx.metrics import percentile
from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.redis_client import redis_client
from livectx.repo.schema import avro_twin
from livectx.schemas.client import ConfluentRegistry
from livectx.settings import Settings
from livectx.topics import TopicSpec, apply
from livectx_benchmarks import example
from livectx_benchmarks.cpu_shares import CpuShares, local_servers
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.kafka_throughput import _consume
from livectx_benchmarks.pacing import Pacer
from livectx_benchmarks.payments import CREATED_HEADER, now_us, payment
from livectx_benchmarks.result import BenchResult, BenchTable
from livectx_benchmarks.scratch_keys import forget_tagged

EVENTS = 480_000  # ~385,000 payments: seconds of sustained work, so start-up and the last checkpoint do not dominate
RATE = 5_000.0
FRESHNESS_SECONDS = 10.0


def payment_groups() -> tuple[Any, ...]:
    # the views keyed like the topic: the same four the figures were always measured on
    return tuple(g for g in example.repo().groups if g.source_topic == TRANSACTIONS and not g.rekeyed)


def run(settings: Settings, scale: float = 1.0, rate: float = RATE) -> BenchResult:
    require_reachable(settings)
    tag = uuid.uuid4().hex[:8]
    admin = admin_client(settings)
    throughput_topic, live_topic = f"livectx.bench.features.{tag}", f"livectx.bench.features-live.{tag}"
    easy_topic = f"livectx.bench.features-easy.{tag}"
    avro_topic = f"livectx.bench.features-avro.{tag}"
    topics = (throughput_topic, live_topic, easy_topic, avro_topic)
    # The live topics are stamped by the broker (LogAppendTime), so freshness splits at the append.
    # (The others carry the scenario's March event times, which a broker's append time would contradict.)
    kept = {"retention.ms": "3600000"}
    stamped = kept | {"message.timestamp.type": "LogAppendTime"}
    apply(admin, [TopicSpec(t, 3, stamped if t in (live_topic, easy_topic) else kept) for t in topics])
    avro = AvroRun(settings, avro_topic)
    try:
        count = max(2000, int(EVENTS * scale))
        produced = _produce_scenario(settings, throughput_topic, count, tag)
        avro_produced = _produce_scenario(settings, avro_topic, count, tag, avro.encode)
        # The engine runs with the cyclic collector frozen (FeatureEngine.run): so does its baseline, or the
        # ratio would measure how many objects this process happens to hold (measured: 1.7x on raw consume
        # with Feast's ~300k imported objects tracked).
        gc.freeze()
        # Each baseline is the better of two raw consumes, in J A A J order: one consume varied by +-25%
        # from run to run here, more than the difference between the two formats' engines.
        raw_runs = [_consume(settings, throughput_topic, produced)]
        avro_raw_s = min(_consume(settings, avro_topic, avro_produced) for _ in range(2))
        raw_s = min(*raw_runs, _consume(settings, throughput_topic, produced))
        events_per_s = _engine_throughput(settings, throughput_topic, produced, tag)
        avro_runs = [_engine_throughput(settings, avro_topic, avro_produced, f"{tag}-a1", groups=avro.groups)]
        # What the engine's Prometheus metrics cost (target: under 5%): runs without and with them, the
        # better of each pair (the least disturbed by this shared machine).
        # In ABBA order (with, without, without, with), so a drift over the runs (caches warming) favours
        # neither side.
        bare = [_engine_throughput(settings, throughput_topic, produced, f"{tag}-bare{i}", False) for i in (1, 2)]
        avro_runs.append(_engine_throughput(settings, avro_topic, avro_produced, f"{tag}-a2", groups=avro.groups))
        with_metrics = [events_per_s, _engine_throughput(settings, throughput_topic, produced, f"{tag}-m1")]
        # What a worker started as documented does: it writes the offline copy too (the better of two).
        default = [
            _engine_throughput(settings, throughput_topic, produced, f"{tag}-d{i}", offline=True) for i in (1, 2)
        ]
        seconds = FRESHNESS_SECONDS * min(1.0, max(scale, 0.2))
        fresh = _freshness(settings, live_topic, rate, seconds, tag)
        # Freshness when the engine is not overloaded: half the throughput it just measured.
        sustainable = max(50.0, round(events_per_s / 2, -1))
        easy = _freshness(settings, easy_topic, sustainable, seconds, tag + "e")
    finally:
        for future in admin.delete_topics(list(topics)).values():
            future.result(30)
        avro.close()
    result = BenchResult("features")
    raw = produced / raw_s
    json_ratio, avro_ratio = max(with_metrics) / raw, max(avro_runs) / (avro_produced / avro_raw_s)
    result.figures = {
        "events": produced,
        "events_per_s": events_per_s,
        "raw_consume_per_s": raw,
        "throughput_ratio": events_per_s / raw,
        "default_events_per_s": max(default),
        "default_throughput_ratio": max(default) / raw,
        "events_per_s_without_metrics": max(bare),
        "metrics_overhead": 1 - max(with_metrics) / max(bare),
        "avro_events_per_s": max(avro_runs),
        "avro_raw_consume_per_s": avro_produced / avro_raw_s,
        "avro_throughput_ratio": avro_ratio,
        "json_throughput_ratio_best": json_ratio,
        "avro_vs_json": avro_ratio / json_ratio,
        "rate": fresh["rate"],
        "achieved_rate": fresh["achieved"],
        "freshness_p50_ms": fresh["p50"],
        "freshness_p99_ms": fresh["p99"],
        "freshness_rows": fresh["rows"],
        "sustainable_rate": easy["rate"],
        "freshness_p50_ms_sustainable": easy["p50"],
        "freshness_p99_ms_sustainable": easy["p99"],
    }
    for label, run in (("", fresh), ("_sustainable", easy)):
        result.figures |= {f"freshness_{k}{label}": v for k, v in run["stages"].items() if k != "samples"}
        result.figures |= {f"freshness_{k}{label}": v for k, v in run["cpu"].items()}
    result.tables.append(_stage_table(fresh, easy))
    result.notes.append(
        f"{len(payment_groups())} feature groups on payments ({', '.join(g.name for g in payment_groups())}), "
        "exactly-once, default checkpoint cadence (10 ms while keeping up), one worker process"
    )
    result.notes.append(f"Avro run: {avro.described} (target: avro_vs_json >= 0.9)")
    return result


def _stage_table(fresh: dict[str, Any], easy: dict[str, Any]) -> BenchTable:
    """Freshness stage by stage (:mod:`livectx_ingest.streaming.stages`), at the bench rate and the
    sustainable one: produce = made to broker append, fetch = append to consumed, apply = consumed to in
    window state, commit = applied to visible online."""
    rows = []
    for stage in (*STAGES, "total"):
        row = [stage]
        for run in (fresh, easy):
            figures = run["stages"]
            row += [
                f"{figures.get(f'{stage}_p50_ms', float('nan')):.1f}",
                f"{figures.get(f'{stage}_p99_ms', float('nan')):.1f}",
            ]
        rows.append(row)
    columns = ["stage", f"p50 ms @{fresh['rate']:.0f}/s", "p99 ms", f"p50 ms @{easy['rate']:.0f}/s", "p99 ms "]
    return BenchTable("freshness by stage", columns, rows)


class AvroRun:
    """The payments as Avro: the source's Avro twin, its records framed with the id the registry gave
    the twin's schema under a bench subject (deleted at the end), or plain when no registry answers."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.event_type = avro_twin(example.model(TRANSACTIONS))
        self.groups = tuple(dataclasses.replace(g, event_type=self.event_type) for g in payment_groups())
        self.subject = f"{topic}-value"
        self._registry: ConfluentRegistry | None = None
        self._schema_id: int | None = None
        try:
            registry = ConfluentRegistry(settings)
            schema_str = json.dumps(self.event_type.avro_schema)
            self._schema_id, _version = registry.register(self.subject, "AVRO", schema_str)
            self._registry = registry
            self.described = f"the Confluent wire format, schema id {self._schema_id} from {registry.url}"
        except LivectxError as exc:
            self.described = f"plain schemaless Avro (no schema registry: {exc})"

    def encode(self, event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        key, value, headers = serde.encode(self.event_type.model_construct(**event.model_dump()))
        return key, value if self._schema_id is None else wire.frame(self._schema_id, value), headers

    def close(self) -> None:
        if self._registry is not None:
            for permanent in (False, True):
                self._registry.client.delete_subject(self.subject, permanent=permanent)


def _produce_scenario(
    settings: Settings, topic: str, count: int, tag: str, encode: Callable[[Event], Any] = serde.encode
) -> int:
    p = producer(settings)
    events = itertools.islice(example.events("fraud", 7, datetime(2026, 3, 10, tzinfo=UTC), 200.0), count)
    n = 0
    for source, event in events:
        if source != TRANSACTIONS:
            continue
        key, value, headers = encode(event.model_copy(update={"user_id": f"{tag}-{event.user_id}"}))
        _produce(p, topic, key, value, headers)
        n += 1
    assert p.flush(60) == 0
    return n


def _produce(p, topic, key, value, headers) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            p.produce(topic, key=key, value=value, headers=headers)
            return
        except BufferError:
            p.poll(0.05)


def _engine_throughput(
    settings: Settings,
    topic: str,
    count: int,
    tag: str,
    prometheus: bool = True,
    groups: Any = None,
    *,
    offline: bool = False,
) -> float:
    """Events/s from the first record the engine consumed to the commit that made the last one durable
    online: the span the raw baseline is timed over too (first fetch to last record), with group join
    before and the caught-up check and shut-down after left out of both. ``offline``: write the offline
    copy, as a worker does by default (into a scratch data dir: Feast reads every file of a view's folder)."""
    scratch = tempfile.TemporaryDirectory(prefix="livectx-bench-offline-") if offline else contextlib.nullcontext()
    # Each run's state and rows go once it has been timed: the next runs and the freshness runs measure a
    # store holding what they wrote, not every earlier run's (livectx_benchmarks.scratch_keys).
    with scratch as data_dir, _forgotten(settings, tag):
        if data_dir is not None:
            settings = copy.copy(settings)
            settings.core = settings.core.model_copy(update={"data_dir": Path(data_dir)})
        stats, _late = run_features_worker(
            settings,
            groups=groups or payment_groups(),
            consumer_group=f"bench-{tag}",
            worker_id="t",
            until_caught_up=True,
            topic_map={TRANSACTIONS: topic},
            write_offline=offline,
            dead_letter_topic=f"livectx.bench.dlq.{tag}",
            prometheus=prometheus,
        )
    if stats.events != count or stats.busy_s <= 0:
        raise RuntimeError(f"the engine processed {stats.events} of {count} benchmark events")
    return count / stats.busy_s


def _freshness(settings: Settings, topic: str, rate: float, seconds: float, tag: str) -> dict[str, float]:
    """Freshness at a sustained ``rate`` produced by a separate process (as real producers are): a feeder
    thread in this process would compete with the engine for the GIL and add its own scheduling delay to
    every event's age."""
    import multiprocessing

    group = f"bench-live-{tag}"
    stop = threading.Event()
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Event(), spawn.Queue()
    feeder = spawn.Process(target=_feed, args=(topic, rate, seconds, tag, ready, results), daemon=True)
    achieved: list[tuple[float, float, float]] = []  # the feeder's (rate, CPU seconds, wall seconds)
    shares = CpuShares(local_servers(settings))

    def on_progress(stats) -> None:  # type: ignore[no-untyped-def]
        # A checkpoint may write no row (a partition's end moved its offset): the traffic starts once the
        # warm-up row is online, so the engine is assigned and has written before anything is measured.
        if stats.freshness_ms:
            shares.start()
            ready.set()

    def supervise() -> None:
        try:
            achieved.append(results.get(timeout=seconds + 180))
            # The CPU span is the traffic's: the engine is within a checkpoint of the feeder's last send
            # here; the caught-up check's polling and the worker's shut-down come after it.
            shares.stop()
            wait_for_caught_up(settings, group, end_offsets(settings, [topic]), timeout_s=300)
        finally:
            stop.set()

    feeder.start()
    supervisor = threading.Thread(target=supervise, daemon=True)
    supervisor.start()
    stages = StageClock(_created_ms)
    with _forgotten(settings, tag):
        stats, _late = run_features_worker(
            settings,
            groups=payment_groups(),
            consumer_group=group,
            worker_id="f",
            topic_map={TRANSACTIONS: topic},
            write_offline=False,
            dead_letter_topic=f"livectx.bench.dlq.{tag}",
            on_progress=on_progress,
            stop=stop,
            stages=stages,
        )
        shares.stop()
    feeder.join(10)
    samples = stats.freshness_ms[1:] or [float("nan")]  # drop the warm-up row
    return {
        "rate": rate,
        "achieved": achieved[0][0] if achieved else 0.0,
        "cpu": shares.figures(int(rate * seconds), *achieved[0][1:]) if achieved else {},
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "rows": len(samples),
        "stages": stages.summary(skip=1),  # (the warm-up record)
    }


@contextlib.contextmanager
def _forgotten(settings: Settings, tag: str) -> Iterator[None]:
    """Remove the Redis keys of ``tag``'s consumer groups and users when the block ends."""
    try:
        yield
    finally:
        forget_tagged(redis_client(settings), tag)


def _created_ms(message: Any) -> float | None:
    """When the feeder made the record: its ``created-us`` header (the event time, with microseconds)."""
    for name, value in message.headers() or ():
        if name == CREATED_HEADER:
            return int(value) / 1000
    return None


def _feed(topic: str, rate: float, seconds: float, tag: str, ready: Any, results: Any) -> None:
    """The feeder process: one warm-up record, then wall-clock-stamped payments at ``rate`` for ``seconds``."""
    from livectx.settings import get_settings

    settings = get_settings()
    p = producer(settings)
    # Warm-up record: the engine is assigned and writing before the measured traffic starts.
    _send(p, topic, f"{tag}-warm", 0)
    p.flush(30)
    if not ready.wait(120):
        results.put((0.0, 0.0, 0.0))
        return
    count = int(rate * seconds)
    cpu_began = time.process_time()
    pacer = Pacer(p, rate, poll_every=500)
    for n in range(1, count + 1):
        _send(p, topic, f"{tag}-u{n % 500}", n)
        pacer.sent_one(n)
    p.flush(30)
    wall = time.perf_counter() - pacer.began
    results.put((count / wall, time.process_time() - cpu_began, wall))


def _send(p, topic: str, user: str, n: int) -> None:  # type: ignore[no-untyped-def]
    """Payment ``n`` of ``user``, made now (:func:`livectx_benchmarks.payments.payment`)."""
    key, value, headers = payment(user, n, now_us())
    _produce(p, topic, key, value, headers)
