"""Change data capture end to end: a real Postgres table, Debezium on a real Kafka Connect worker, the broker,
the embedding worker and pgvector. The vector index must equal the table, row for row, through inserts,
updates and deletes, a Connect restart and ``kill -9`` of the embedding worker mid-batch."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livectx.cdc import manage
from livectx.cdc.database import connect
from livectx.offsets import end_offsets
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import wait_until
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.watermark import IndexWatermark

from .cdc_helpers import Captured, captured, reviews
from .kafka_helpers import create_topic, read_all

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("kettle", "toaster", "blender", "lamp", "chair", "router", "parcel", "refund", "battery", "screen")


@pytest.fixture(scope="module")
def connect_worker(settings: Settings, stack: Stack) -> Iterator[Stack]:
    """The stack with Kafka Connect (started here, and stopped at the end, unless it already runs)."""
    with_cdc = Stack(settings, cdc=True)
    started = with_cdc.up(["connect"]) == [("connect", "started")]
    yield with_cdc
    if started:
        with_cdc.down(["connect"])


@pytest.fixture
def table(
    settings: Settings, connect_worker: Stack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Captured]:
    """A table, topic and vector index of this test's own; connector, slot and table dropped afterwards."""
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{unique}")
    found = captured(unique)
    create_topic(settings, found.table.topic, partitions=3)
    with connect(found.table, settings) as conn:
        conn.execute(f"CREATE TABLE {found.table.table} (row_id text PRIMARY KEY, body text NOT NULL)")
    yield found
    manage.drop(settings, [found.table])
    with connect(found.table, settings) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {found.table.table}")
    store = PgVectorStore.from_settings(Settings())
    store.drop()
    store.close()


def text(i: int, version: int) -> str:
    return f"The {WORDS[i % 10]} of order {i * 7919 % 100_003} arrived, revision {version}."


def mutate(found: Captured, settings: Settings, rows: dict[str, str], rng: random.Random, count: int) -> None:
    """``count`` random inserts, updates and deletes in small transactions; ``rows`` tracks the table."""
    with connect(found.table, settings) as conn:
        for n in range(count):
            with conn.transaction():
                for _ in range(rng.randint(1, 4)):
                    key = f"k{rng.randrange(400):04d}"
                    if key in rows and rng.random() < 0.3:
                        conn.execute(f"DELETE FROM {found.table.table} WHERE row_id = %s", (key,))
                        del rows[key]
                    else:
                        rows[key] = text(int(key[1:]), n)
                        conn.execute(
                            f"INSERT INTO {found.table.table} VALUES (%s, %s) "
                            "ON CONFLICT (row_id) DO UPDATE SET body = EXCLUDED.body",
                            (key, rows[key]),
                        )


def table_rows(found: Captured, settings: Settings) -> dict[str, str]:
    with connect(found.table, settings) as conn:
        return dict(conn.execute(f"SELECT row_id, body FROM {found.table.table}").fetchall())


def stored(settings: Settings) -> list[tuple[str, str]]:
    store = PgVectorStore.from_settings(settings)
    try:
        return store._run(lambda c: c.execute(f"SELECT id, text FROM {store.index} ORDER BY id").fetchall())
    finally:
        store.close()


def test_the_index_equals_the_table_through_restarts_and_kill_9(
    table: Captured, settings: Settings, unique: str, tmp_path: Path
) -> None:
    rng = random.Random(16)
    rows: dict[str, str] = {}
    mutate(table, settings, rows, rng, 60)  # before the connector exists: the initial snapshot reads these
    snapshot_rows = len(table_rows(table, settings))
    manage.apply(settings, [table.table])
    # The snapshot is on the topic before the table changes again: a row changed while the snapshot still
    # runs may be read by it as well as streamed, which would blur the "no second snapshot" count below.
    snapshot = read_all(settings, table.table.topic, expected=snapshot_rows, timeout_s=180)
    assert len(snapshot) == snapshot_rows and all(json.loads(m.value())["op"] == "r" for m in snapshot)
    mutate(table, settings, rows, rng, 150)

    isolated = Settings()  # the test's own vector index
    command = [sys.executable, "-m", "tests.integration.cdc_helpers", unique, f"test-{unique}"]
    env = {**os.environ, "LIVECTX_VECTOR_INDEX": isolated.vector.index, "PYTHONPATH": os.pathsep.join(sys.path)}
    watermark = IndexWatermark(redis_client(isolated), isolated.vector.index)
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        progressed = wait_until(lambda: sum(watermark.positions().values()) >= 40 or proc.poll() is not None, 180)
        assert progressed and proc.poll() is None, log.read_text()[-3000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: hundreds of changes are still unread
        proc.wait(30)
    assert sum(watermark.positions().values()) < 300

    connect_service = Stack(settings, cdc=True)
    connect_service.down(["connect"])  # changes made meanwhile wait in the slot
    mutate(table, settings, rows, rng, 100)
    connect_service.up(["connect"])
    mutate(table, settings, rows, rng, 50)

    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        expected = sorted((f"{table.spec.name}:{k}", v) for k, v in table_rows(table, settings).items())
        assert expected == sorted((f"{table.spec.name}:{k}", v) for k, v in rows.items())
        matched = wait_until(lambda: stored(isolated) == expected or proc.poll() is not None, 240, 0.5)
        assert matched and proc.poll() is None, log.read_text()[-3000:]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert stored(isolated) == expected  # exact: ids and texts, no duplicate, nothing lost, nothing deleted back

    records = read_all(settings, table.table.topic, expected=sum(end_offsets(settings, [table.table.topic]).values()))
    snapshot_reads = [m for m in records if m.value() and json.loads(m.value())["op"] == "r"]
    assert len(snapshot_reads) == snapshot_rows  # the restarted connector resumed: no second snapshot
    [row] = manage.status(settings, [table.table])
    assert (row.connector_state, row.task_states, row.slot_active) == ("RUNNING", ("RUNNING",), True)
    assert row.newest_change_age_s is not None and row.retained_wal_bytes is not None


def test_the_cli_plans_the_example_tables_and_the_bench_reports_every_stage(
    connect_worker: Stack, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from livectx.cli import cli

    plan = CliRunner().invoke(cli, ["cdc", "plan", "--json"])
    assert plan.exit_code == 0, plan.output
    planned = {p["source"]: p for p in json.loads(plan.output)}
    assert set(planned) == {"app_review", "app_product"}
    assert planned["app_review"]["config"]["table.include.list"] == "public.reviews"
    assert planned["app_review"]["config"]["database.password"] in ("", "****")  # never shown

    target = tmp_path / "cdc.json"
    result = CliRunner().invoke(cli, ["bench", "cdc", "--scale", "0.05", "--json", str(target)])
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    assert figures["rows"] == 20
    for stage in ("cdc", "kafka", "embedding", "index", "searchable"):
        assert figures[f"{stage}_p50_ms"] <= figures[f"{stage}_p99_ms"]
    assert figures["searchable_p50_ms"] >= figures["cdc_p50_ms"]  # the end-to-end figure contains the stages


@pytest.mark.timeout(600)  # three worker runs and a Connect restart, on a shared 2-core machine
def test_review_stats_equal_the_table_through_kill_9_of_both_stages_and_a_connect_restart(
    settings: Settings, connect_worker: Stack, feature_store: Any, unique: str, tmp_path: Path
) -> None:
    """A table view grouped by a non-key column (reviews per product, rows moving between products): Feast's
    SDK reads the count and mean rating the table gives, after the repartitioner and then the engine were
    SIGKILLed by their fault hooks mid-stream, with Connect restarted between changes."""
    cdc_table, _view = reviews(unique)
    began_ms = int(time.time() * 1000)
    create_topic(settings, cdc_table.topic, partitions=3)
    with connect(cdc_table, settings) as conn:
        conn.execute(f"CREATE TABLE {cdc_table.table} (row_id text PRIMARY KEY, product_id text, rating int)")
    rng = random.Random(61)
    products = [f"p-{unique}-{i}" for i in range(6)]
    rows: dict[str, tuple[str, int]] = {}
    records = 0  # Debezium records the changes give: one per insert and update, a delete and its tombstone

    def change(count: int) -> None:
        nonlocal records
        with connect(cdc_table, settings) as conn:
            for _ in range(count):
                key = f"r{rng.randrange(120):03d}"
                if key in rows and rng.random() < 0.25:
                    conn.execute(f"DELETE FROM {cdc_table.table} WHERE row_id = %s", (key,))
                    del rows[key]
                    records += 2
                else:  # a new review, a new rating, or the review moved to another product
                    rows[key] = (rng.choice(products), rng.randint(1, 5))
                    conn.execute(
                        f"INSERT INTO {cdc_table.table} VALUES (%s, %s, %s) ON CONFLICT (row_id) DO UPDATE "
                        "SET product_id = EXCLUDED.product_id, rating = EXCLUDED.rating",
                        (key, *rows[key]),
                    )
                    records += 1

    def on_topic(changes: int) -> bool:
        """Debezium has put that many records on the topic (a restarted connector may re-send more)."""
        return sum(end_offsets(settings, [cdc_table.topic]).values()) >= changes

    try:
        change(80)
        records = len(rows)  # the snapshot reads the rows there are, not the changes that made them
        manage.apply(settings, [cdc_table])
        assert wait_until(lambda: on_topic(records), 180)  # the snapshot first: no row both read and streamed
        change(250)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-m", "tests.integration.cdc_helpers", "--features", unique, f"stats-{unique}"]
        log = tmp_path / "features.log"

        faults = ({"LIVECTX_REPARTITION_CRASH": "produced:120"}, {"LIVECTX_ENGINE_CRASH": "event:150"})
        for n, fault in enumerate(faults):
            assert wait_until(lambda: on_topic(records), 180)  # (records as of now)
            run = subprocess.run(command, env={**env, **fault}, cwd=ROOT, stdout=log.open("ab"),
                                 stderr=subprocess.STDOUT, timeout=240)  # fmt: skip
            assert run.returncode == -signal.SIGKILL, log.read_text()[-3000:]
            if n == 0:
                restarted = Stack(settings, cdc=True)
                restarted.down(["connect"])  # changes made meanwhile wait in the slot
                change(60)
                restarted.up(["connect"])
            change(40)
        assert wait_until(lambda: on_topic(records), 180)
        run = subprocess.run(command, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, timeout=240)
        assert run.returncode == 0, log.read_text()[-3000:]

        with connect(cdc_table, settings) as conn:
            table = conn.execute(f"SELECT product_id, count(*), sum(rating) FROM {cdc_table.table} GROUP BY 1")
            recomputed = {p: (n, total / n) for p, n, total in table.fetchall()}
        assert {p for p, _ in rows.values()} == set(recomputed)
        columns = ("review_count", "mean_rating", "app_review_stats__event_ms")
        online = feature_store.get_online_features(
            features=[f"app_review_stats:{c}" for c in columns], entity_rows=[{"product_id": p} for p in products]
        ).to_dict()
        served = dict(zip(online["product_id"], zip(online["review_count"], online["mean_rating"], strict=True),
                          strict=True))  # fmt: skip
        assert served == {p: recomputed.get(p, (0, None)) for p in products}
        changed_ms = dict(zip(online["product_id"], online["app_review_stats__event_ms"], strict=True))
        assert all(began_ms <= changed_ms[p] <= time.time() * 1000 for p in recomputed)  # commit times: freshness
    finally:
        manage.drop(settings, [cdc_table])
        with connect(cdc_table, settings) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {cdc_table.table}")
