"""A feature worker's ``/metrics`` on the real broker and Redis: scraped while it runs, it reports the
events applied, each view's freshness histogram, checkpoints, lag per partition and dead letters by kind."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from .engine_helpers import payment, produce, start_metrics_worker
from .kafka_helpers import create_topic
from .test_engine_sane_values import _raw


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_a_running_worker_exports_its_metrics(settings, feature_store, unique: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    topic = create_topic(settings, f"test.{unique}.txn", partitions=2)
    dlq = create_topic(settings, f"test.{unique}.dlq")
    user = f"{unique}-u"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    good = [payment(f"{user}{k % 3}", base + timedelta(seconds=k), k) for k in range(30)]
    poison = [b"\xff not json", _raw(user, 99, "Infinity", base)]
    produce(settings, topic, [*good[:15], *poison, *good[15:]], key=user.encode())
    group, port = f"prom-{unique}", _free_port()
    stop = threading.Event()
    worker = start_metrics_worker(settings, topic, dlq, group, unique, port, stop)
    lag = ("livectx_consumer_lag_records", (("group", group), ("partition", "0"), ("topic", topic)))
    events = ("livectx_events_processed_total", (("group", group),))
    try:
        deadline = time.monotonic() + 120
        while True:  # scrape as Prometheus would, until the worker has applied everything and reported lag
            try:
                samples = _scrape(port)
            except OSError:
                samples = {}
            if samples.get(events) == len(good) and samples.get(lag) == 0:
                break
            assert worker.is_alive() and time.monotonic() < deadline, json.dumps(list(map(str, samples))[:20])
            time.sleep(0.1)  # polling the scrape endpoint, with a deadline
    finally:
        stop.set()
        worker.join(60)
    worker_label = ("worker", f"streaming-features/{group}")
    assert samples[("livectx_dead_letters_total", tuple(sorted([worker_label, ("reason", "malformed")])))] == 1
    assert samples[("livectx_dead_letters_total", tuple(sorted([worker_label, ("reason", "non_finite")])))] == 1
    assert samples[("livectx_checkpoint_duration_seconds_count", (("group", group),))] >= 1
    assert samples[("livectx_feature_freshness_seconds_count", (("view", "user_txn_5m"),))] >= 3
