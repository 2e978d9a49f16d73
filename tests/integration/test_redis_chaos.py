"""Redis killed (-9) and restarted under a running feature worker: it waits with backoff, says so in one
line, and ends exact; and a Redis that comes back empty makes it rebuild from the log, also exact."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.settings import Settings
from livectx.stack.process import wait_until

from .engine_helpers import TXN_GROUPS, online_mismatches, produce, scenario_transactions, worker_command
from .kafka_helpers import create_topic
from .private_redis import PrivateRedis, private_redis


@pytest.fixture()
def own_redis(settings: Settings, stack, tmp_path: Path) -> Iterator[PrivateRedis]:  # type: ignore[no-untyped-def]
    with private_redis(settings, tmp_path / "redis-state", port_offset=45) as found:
        yield found


def _kill(redis: PrivateRedis) -> None:
    service = redis.stack.service("redis")
    pid = service.process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: service.process.pid() is None, 10)


def _restart(redis: PrivateRedis, wipe: bool = False) -> None:
    if wipe:  # the store lost everything: its append-only file is gone
        shutil.rmtree(redis.stack.service("redis").home, ignore_errors=True)  # type: ignore[attr-defined]
    redis.stack.up(["redis"])


@pytest.mark.timeout(600)
def test_redis_killed_twice_under_the_worker_once_coming_back_empty_ends_exact(
    settings: Settings,
    own_redis: PrivateRedis,
    feature_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    topic = create_topic(settings, f"test.{unique}.txn", 3)
    dlq, late = create_topic(settings, f"test.{unique}.dlq"), create_topic(settings, f"test.{unique}.late")
    events = scenario_transactions(unique, 6000, seed=31)
    size = len(events) // 5
    chunks = [events[n * size : (n + 1) * size] for n in range(4)] + [events[4 * size :]]
    group = f"test-{unique}"
    command = [c for c in worker_command(group, topic, dlq, late) if c != "--until-caught-up"]
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=own_redis.worker_env)
    try:

        def caught_up() -> None:
            targets = end_offsets(settings, [topic])
            assert wait_for_caught_up(settings, group, targets, timeout_s=180), log.read_text()[-3000:]

        def outage_seen(n: int) -> bool:
            return log.read_text().count("unreachable (") >= n

        produce(settings, topic, chunks[0])
        caught_up()
        _kill(own_redis)
        produce(settings, topic, chunks[1])  # consumed during the outage: its checkpoint waits for Redis
        assert wait_until(lambda: outage_seen(1), 60), log.read_text()[-3000:]
        _restart(own_redis)  # the AOF keeps every commit up to about a second before the kill
        caught_up()
        _kill(own_redis)
        produce(settings, topic, chunks[2])
        assert wait_until(lambda: outage_seen(2), 60), log.read_text()[-3000:]
        _restart(own_redis, wipe=True)  # back empty: rows, state, offsets and claims all gone
        produce(settings, topic, chunks[3])
        caught_up()
        produce(settings, topic, chunks[4])
        caught_up()
    finally:
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert online_mismatches(own_redis.feature_store(), TXN_GROUPS, events) == []
    text = log.read_text()
    assert text.count("unreachable (") == 2, text[-3000:]  # one line per outage, not one per retry
    assert text.count("reachable again after") == 2
    assert "lost our last commits" in text  # the empty store was noticed, and the log replayed
    assert "Traceback" not in text
