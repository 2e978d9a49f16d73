"""``trainset``: point-in-time training-set build time and peak memory, beside Feast's historical retrieval.

1. ``events`` fraud-scenario events (seeded, deterministic) go to a Parquet file of raw events, and
   ``labels`` random (user, instant) labels over their time span to another.
2. Our path: ``livectx_backtest.dataset.build_training_set`` (DuckDB recomputation from the raw events,
   ``fraud_features``) runs in a child process, which reports its build seconds and its peak RSS (the
   kernel's ``VmHWM``: the whole process, Python, DuckDB and Arrow included).
3. Feast's path over the same data: the offline rows the engine would have written (one per entity and
   event time, computed by the same SQL) are materialised under a private data dir, the repo is applied to
   a private registry, and ``get_historical_features`` runs in a child process for the first
   ``feast_hist_labels`` labels (fewer than ``labels`` when capped, to keep Feast's non-equi join within
   memory and time). Its answer is compared with ours (``feast_agrees``).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livectx.features import pit_sql
from livectx.features.spec import FeatureGroup
from livectx.settings import CoreSettings, Settings

SERVICE = "fraud_features"
START = datetime(2026, 1, 1, tzinfo=UTC)
FEAST_LABELS = 100_000
CHILD_TIMEOUT_S = 900


def measure_trainset(
    settings: Settings,
    *,
    events: int,
    labels: int,
    work_dir: Path,
    seed: int = 7,
    feast_labels: int = FEAST_LABELS,
) -> dict[str, float]:
    """Figures: ``trainset_seconds``, ``trainset_peak_mb``, ``feast_hist_seconds``, ``feast_hist_peak_mb``,
    ``feast_hist_labels``, ``feast_agrees`` (1.0 when Feast's values equal ours), ``events``, ``labels``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    events_path, labels_path = work_dir / "events.parquet", work_dir / "labels.parquet"
    _write_inputs(events, labels, seed, events_path, labels_path)
    ours = _child(["build", str(labels_path), str(events_path), str(work_dir / "train.parquet")], os.environ)

    feast_settings = copy.copy(settings)
    feast_settings.core = CoreSettings(data_dir=work_dir / "feast-data", feature_repo=settings.feature_repo)
    _materialise_offline_rows(feast_settings, events_path, work_dir)
    from livectx.feast_store import apply_feature_repo, feast_env

    apply_feature_repo(feast_settings)
    asked = min(labels, feast_labels)
    feast = _child(["feast", str(labels_path), str(asked), str(work_dir / "feast.parquet")], feast_env(feast_settings))
    return {
        "events": float(events),
        "labels": float(labels),
        "trainset_seconds": ours["seconds"],
        "trainset_peak_mb": ours["peak_mb"],
        "feast_hist_seconds": feast["seconds"],
        "feast_hist_peak_mb": feast["peak_mb"],
        "feast_hist_labels": float(asked),
        "feast_agrees": _agrees(work_dir / "train.parquet", work_dir / "feast.parquet", asked),
    }


def _write_inputs(events: int, labels: int, seed: int, events_path: Path, labels_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from livectx_benchmarks import example

    history = itertools.islice(example.events("fraud", seed, START, 200.0), events)
    table = pit_sql.events_table(history)
    pq.write_table(table, events_path, compression="zstd")
    rng = np.random.default_rng(seed)
    times = table["event_time"].cast(pa.int64()).to_numpy()
    users = np.unique(table["user_id"].to_numpy(zero_copy_only=False))
    labels_table = pa.table(
        {
            "user_id": users[rng.integers(0, len(users), labels)],
            "event_timestamp": pa.array(
                rng.integers(times.min(), times.max() + 600_000, labels), pa.timestamp("ms", "UTC")
            ),
            "label": rng.integers(0, 2, labels),
        }
    )
    pq.write_table(labels_table, labels_path)


def _materialise_offline_rows(settings: Settings, events_path: Path, work_dir: Path) -> None:
    """The offline rows Feast reads: the last row per entity and event time (the only one Feast's
    point-in-time join can pick), in :func:`livectx.features.offline_rows.offline_schema`'s columns."""
    con = pit_sql.connect(work_dir)
    sources = pit_sql.parquet_sources(con, events_path)
    for group in pit_sql.service_groups(SERVICE):
        target = settings.offline_dir / group.name
        target.mkdir(parents=True, exist_ok=True)
        sql = _offline_rows_sql(group, pit_sql.group_rows_sql(group, sources[group.source_topic]))
        con.execute(f"COPY ({sql}) TO {pit_sql.literal(str(target / 'rows.parquet'))} (FORMAT parquet)")


def _offline_rows_sql(group: FeatureGroup, rows: str) -> str:
    features = ", ".join(pit_sql.ident(f.name) for f in group.features)
    return f"""
SELECT entity AS {pit_sql.ident(group.entity_key)}, CAST(epoch_ms(ts) AS TIMESTAMPTZ) AS event_timestamp,
    CAST(make_timestamp(row_number() OVER (ORDER BY entity, ts)) AS TIMESTAMPTZ) AS created_timestamp,
    window_start_ms, window_end_ms, CAST(0 AS INTEGER) AS source_partition, CAST(0 AS BIGINT) AS source_offset,
    CAST(0 AS BIGINT) AS written_ms, {features}, ts AS {pit_sql.ident(group.event_time_field)},
    CAST(0 AS BIGINT) AS {pit_sql.ident(group.written_field)}, window_end_ms AS {pit_sql.ident(group.window_end_field)}
FROM ({rows}) QUALIFY row_number() OVER (PARTITION BY entity, ts) = 1
"""


def _agrees(ours: Path, feast: Path, rows: int) -> float:
    import pyarrow.parquet as pq
    from livectx_backtest.dataset import compare

    from livectx.errors import LivectxError

    columns = [c for g in pit_sql.service_groups(SERVICE) for c in pit_sql.output_columns(g)]
    try:
        compare(pq.read_table(ours).slice(0, rows), pq.read_table(feast), columns, "user_id")
    except LivectxError:
        return 0.0
    return 1.0


def _child(args: list[str], env: Any) -> dict[str, float]:
    """Run one measured step in a fresh interpreter: its peak RSS is its own."""
    done = subprocess.run(
        [sys.executable, "-m", "livectx_benchmarks.trainset", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trainset benchmark step {args[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _main(argv: list[str]) -> None:
    step = argv[0]
    if step == "build":
        from livectx_backtest.dataset import build_training_set

        from livectx.settings import get_settings

        labels, events, out = map(Path, argv[1:4])
        started = time.perf_counter()
        build_training_set(get_settings(), labels, SERVICE, out, source=str(events), via="recompute")
    else:
        import pyarrow.parquet as pq

        from livectx.feast_store import open_feature_store
        from livectx.settings import get_settings

        labels, count, out = Path(argv[1]), int(argv[2]), Path(argv[3])
        store = open_feature_store(get_settings())
        service = store.get_feature_service(SERVICE)
        entity_df = pq.read_table(labels).slice(0, count).to_pandas()
        entity_df["__row"] = range(count)  # Feast returns rows in join order; it carries extra columns
        started = time.perf_counter()
        table = store.get_historical_features(entity_df=entity_df, features=service).to_arrow()
        seconds = time.perf_counter() - started
        pq.write_table(table.sort_by("__row").drop(["__row"]), out)
        print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb()}))
        return
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}))


if __name__ == "__main__":
    _main(sys.argv[1:])
