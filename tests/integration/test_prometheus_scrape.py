"""The real Prometheus (the stack's, started through ``Stack``) scrapes a running feature worker that
registered itself by file-based service discovery: PromQL returns the engine's freshness and the dead-letter
count of a poison record, the shipped alerting rules are loaded, and the worker's target file is gone once
it stops. Prometheus runs with its own state dir and port, so the shared stack is not disturbed; the worker
uses the shared Kafka and Redis (ports do not depend on the state dir)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from livectx.prometheus_targets import targets_dir
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import port_is_open

from .engine_helpers import payment, produce, start_metrics_worker
from .kafka_helpers import create_topic

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="apt-get install -y prometheus")

PROMETHEUS_PORT = 19190


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def monitored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Settings]:
    """Settings with their own state dir and Prometheus port; the shared stack's other services."""
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIVECTX_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LIVECTX_STACK_PROMETHEUS_PORT", str(PROMETHEUS_PORT))
    monkeypatch.setenv("LIVECTX_STACK_PROMETHEUS_SCRAPE_INTERVAL_S", "1")
    assert not port_is_open("127.0.0.1", PROMETHEUS_PORT), f"port {PROMETHEUS_PORT} busy before the test"
    isolated = Settings()
    stack = Stack(isolated, monitoring=True)
    try:
        assert stack.up(["prometheus"]) == [("prometheus", "started")]
        yield isolated
    finally:
        assert stack.down(["prometheus"]) == [("prometheus", "stopped")]
    assert not port_is_open("127.0.0.1", PROMETHEUS_PORT)


def _api(settings: Settings, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{settings.stack.prometheus_port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _value(settings: Settings, promql: str) -> float | None:
    """An instant query's single value (None while it returns nothing)."""
    result = _api(settings, "query", query=promql)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_a_registered_worker(monitored: Settings, feature_store, unique: str) -> None:  # type: ignore[no-untyped-def]
    # The stack's Prometheus loaded the shipped rules.
    rules = {r["name"] for g in _api(monitored, "rules")["groups"] for r in g["rules"]}
    assert {
        "LivectxFreshnessSLOBreach",
        "LivectxConsumerLagGrowing",
        "LivectxDeadLetters",
        "LivectxVectorWatermarkStuck",
        "LivectxCircuitBreakerOpen",
    } <= rules

    topic = create_topic(monitored, f"test.{unique}.txn", partitions=2)
    dlq = create_topic(monitored, f"test.{unique}.dlq")
    user = f"{unique}-u"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    good = [payment(f"{user}{k % 3}", base + timedelta(seconds=k), k) for k in range(30)]
    produce(monitored, topic, [*good[:15], b"\xff not json", *good[15:]], key=user.encode())
    group, port = f"promscrape-{unique}", _free_port()
    stop = threading.Event()
    worker = start_metrics_worker(monitored, topic, dlq, group, unique, port, stop)
    freshness = f'sum(livectx_feature_freshness_seconds_count{{view="user_txn_5m", consumer_group="{group}"}})'
    dead = f'livectx_dead_letters_total{{reason="malformed", worker="streaming-features/{group}"}}'
    events = f'livectx_events_processed_total{{group="{group}", job="livectx-features", worker_id="{unique}"}}'
    p99 = (
        "histogram_quantile(0.99, sum by (le) "
        f'(livectx_feature_freshness_seconds_bucket{{view="user_txn_5m", consumer_group="{group}"}}))'
    )
    seen: dict[str, float | None] = {}
    try:
        target = targets_dir(monitored) / f"features-{group}-{unique}.json"
        deadline = time.monotonic() + 120
        while True:  # poll Prometheus' API, with a deadline, until it has scraped the worker's numbers
            seen = {q: _value(monitored, q) for q in (freshness, dead, events, p99)}
            if seen[events] == len(good) and seen[dead] == 1 and (seen[freshness] or 0) >= 1:
                break
            assert worker.is_alive(), "the worker stopped"
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        assert json.loads(target.read_text())[0]["targets"] == [f"127.0.0.1:{port}"]
        up = _value(monitored, f'up{{job="livectx-features", worker_id="{unique}"}}')
        assert up == 1
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    # A quantile of the engine's freshness, in seconds. The histogram is the process's: in a test session it
    # also holds earlier tests' rows (months-old scenario events, past the top bucket), so no upper bound.
    assert seen[p99] is not None and seen[p99] > 0
    assert not target.exists()  # unregistered on exit: Prometheus stops scraping it
