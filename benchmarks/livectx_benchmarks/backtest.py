"""``backtest``: ``livectx backtest run`` throughput over 1,000,000 archived fraud-scenario events, two versions.

Set-up (not timed): N fraud-scenario events (seed 7, payments and logins on one topic, 4 partitions by key)
are written straight into a private cold tier in the archive layout (``livectx.tier.files``), and two
versions are trained and registered on a private registry topic (v1: three features, v2: the full fraud
model).

Timed, in the same run:

- ``baseline_seconds``: the raw replay of the same range (archive files, merged by event time), records
  counted and nothing else: the floor any backtest pays.
- ``seconds``: :func:`livectx_backtest.run.run_backtest` for both versions (replay, decode, the engine's
  window state as of every payment, scoring both, metrics), from the call to its return.

``events_per_s`` = events / seconds; ``ratio`` = seconds / baseline_seconds (how much features and scoring
cost on top of reading the history).
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path

from livectx_backtest.example_fraud_model import save, train_fraud_model, training_rows

from livectx import serde
from livectx.kafka import admin_client, require_reachable
from livectx.models import registry
from livectx.settings import Settings
from livectx.tier.files import write_archive_file
from livectx.tier.layout import archive_schema
from livectx.tier.manifest import Manifest
from livectx.tier.replay import replay
from livectx.tier.storage import open_storage
from livectx.topics import TopicSpec, apply
from livectx_benchmarks import example
from livectx_benchmarks.result import BenchResult

EVENTS = 1_000_000
PARTITIONS = 4
START = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
WEAK_COLUMNS = ("txn_count_5m", "txn_amount_max_5m", "login_failures_5m")


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    from livectx_backtest.run import BacktestSpec, run_backtest

    require_reachable(settings)
    events = max(5_000, int(EVENTS * scale))
    work = Path(tempfile.mkdtemp(prefix="livectx-bench-backtest-"))
    local = copy.copy(settings)
    local.tier = settings.tier.model_copy(update={"url": str(work / "tier")})
    name = uuid.uuid4().hex[:8]
    topic = f"bench.backtest.{name}"
    models = f"bench.backtest.{name}.models"
    admin = admin_client(settings)
    apply(admin, [TopicSpec(models, 1, {"cleanup.policy": "compact", "retention.ms": "3600000"})])
    try:
        set_up = time.perf_counter()
        write_history(local, topic, events)
        register_versions(local, models, work)
        set_up = time.perf_counter() - set_up

        began = time.perf_counter()
        replayed = sum(b.num_rows for b in replay(local, [topic], by="time", merge_by_event_time=True,
                                                  batch_size=20_000, start=START))  # fmt: skip
        baseline = time.perf_counter() - began

        workers = min(2, os.cpu_count() or 1)
        spec = BacktestSpec(
            ("fraud:v1", "fraud:v2"), start=START, topics=(topic,), models_topic=models, workers=workers
        )
        result = run_backtest(local, spec)
    finally:
        admin.delete_topics([models])
        shutil.rmtree(work, ignore_errors=True)
    seconds = result.timing["seconds"]
    if replayed != events or result.summary["events"]["records"] != events:
        raise RuntimeError(
            f"wrote {events} events, replayed {replayed}, backtested {result.summary['events']['records']}"
        )
    v1, v2 = result.summary["models"]
    bench = BenchResult("backtest")
    bench.figures = {
        "events": float(events),
        "seconds": seconds,
        "events_per_s": events / seconds,
        "baseline_seconds": baseline,
        "baseline_events_per_s": events / baseline,
        "ratio": seconds / baseline,
        "payments": float(result.summary["scored"]),
        "workers": float(workers),
        "replay_and_features_seconds": result.timing["replay_and_features_seconds"],
        "scoring_seconds": result.timing["scoring_seconds"],
        "v1_f1": v1["f1"],
        "v2_f1": v2["f1"],
        "setup_seconds": set_up,
    }
    bench.notes.append(
        f"{events:,} fraud-scenario events ({result.summary['scored']:,} payments) archived in {PARTITIONS} "
        f"partitions; two versions scored on identical inputs with the window state in {workers} process(es); "
        f"baseline = raw replay of the same range in the same run (target: under 60 s at 1,000,000 events)."
    )
    return bench


def write_history(settings: Settings, topic: str, events: int) -> None:
    """The scenario's first ``events`` events as archive files (one per partition, by crc32 of the key)."""
    import pyarrow as pa

    columns: list[dict[str, list]] = [  # type: ignore[type-arg]
        {"offset": [], "ms": [], "key": [], "value": [], "schema": []} for _ in range(PARTITIONS)
    ]
    for _topic, event in itertools.islice(example.events("fraud", 7, START, 200.0), events):
        key, value, headers = serde.encode(event)
        part = columns[zlib.crc32(key) % PARTITIONS]
        part["offset"].append(len(part["offset"]))
        part["ms"].append(event.event_time_ms)
        part["key"].append(key)
        part["value"].append(value)
        part["schema"].append(headers[0][1])
    schema = archive_schema()
    manifest = Manifest(open_storage(settings))
    for partition, part in enumerate(columns):
        count = len(part["offset"])
        times = pa.array(part["ms"], pa.int64()).cast(schema.field("event_time").type)
        table = pa.Table.from_arrays(
            [
                pa.array([partition] * count, pa.int32()),
                pa.array(part["offset"], pa.int64()),
                times,
                times,
                pa.array(part["key"], pa.binary()),
                pa.array(part["value"], pa.binary()),
                pa.array(
                    [[{"key": serde.SCHEMA_HEADER, "value": s}] for s in part["schema"]], schema.field("headers").type
                ),
            ],
            schema=schema,
        )
        for first in range(0, count, settings.tier.file_max_records):
            chunk = table.slice(first, settings.tier.file_max_records)
            write_archive_file(
                manifest, topic, chunk, start_offset=first, end_offset=first + chunk.num_rows,
                row_group_records=settings.tier.row_group_records, writer="bench",
                value_schemas={s.decode(): 1 for s in set(part["schema"])},
            )  # fmt: skip


def register_versions(settings: Settings, models: str, work: Path) -> None:
    from livectx_agents.example_fraud import MODEL_FEATURES as FRAUD_MODEL_FEATURES
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows, labels = training_rows(1, 20_000)
    picks = [FRAUD_MODEL_FEATURES.index(c) for c in WEAK_COLUMNS] + [len(FRAUD_MODEL_FEATURES)]
    weak = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(
        [[r[i] for i in picks] for r in rows], labels
    )
    save(weak, work / "v1.joblib")
    save(train_fraud_model(1, 20_000), work / "v2.joblib")
    registry.register(
        settings,
        "fraud",
        "v1",
        work / "v1.joblib",
        feature_columns=WEAK_COLUMNS,
        feature_service="fraud_features",
        topic=models,
    )
    registry.register(settings, "fraud", "v2", work / "v2.joblib", feature_service="fraud_features", topic=models)
