"""Chaos on a real three-node Kafka cluster: start it beside the session's stack, find a partition's leader,
kill -9 a node, restart it, and produce while that happens. Every wait is a condition with a deadline."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from livectx import serde
from livectx.kafka import admin_client, producer
from livectx.settings import Settings
from livectx.stack.kafka import KafkaBroker
from livectx.stack.manager import Stack
from livectx.stack.process import port_is_open, wait_until

#: The cluster's node 1 listens on the session's Kafka port + this (19292 by default, 23292 beside 23092):
#: clear of the session's broker, the lifecycle test's second stack (+100) and Prometheus.
PORT_OFFSET = 200


@dataclass
class Cluster:
    """Three local KRaft nodes; ``client`` is the settings every test client and worker process uses."""

    nodes: list[KafkaBroker]
    client: Settings
    #: One admin client for every metadata poll of the test (a client per poll is a connection set-up per
    #: poll, against a cluster that is losing a node).
    admin: Any = None

    def __post_init__(self) -> None:
        self.admin = admin_client(self.client)

    def node(self, node_id: int) -> KafkaBroker:
        return next(n for n in self.nodes if n.node == node_id)

    def leader(self, topic: str, partition: int = 0) -> int:
        metadata = self.admin.list_topics(topic, timeout=10)
        return metadata.topics[topic].partitions[partition].leader

    def kill(self, node_id: int) -> None:
        """SIGKILL the node (no shutdown, no leadership handover), then wait until every partition of the
        cluster has a live leader again: the controller fenced it and elected from the ISR."""
        node = self.node(node_id)
        pid = node.process.pid()
        assert pid is not None, f"node {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: node.process.pid() is None, 10), f"node {node_id} survived SIGKILL"
        assert wait_until(lambda: self._leaders_avoid(node_id), 60), f"node {node_id}'s partitions kept no leader"

    def restart(self, node_id: int, topics: Sequence[str]) -> None:
        """Start the node again and wait until it is back in the ISR of every partition of ``topics``."""
        node = self.node(node_id)
        node.start()
        node.wait_ready(120)
        assert wait_until(lambda: self._in_every_isr(node_id, topics), 120), f"node {node_id} did not catch up"

    def _leaders_avoid(self, node_id: int) -> bool:
        try:
            metadata = self.admin.list_topics(timeout=5)
        except Exception:
            return False
        partitions = [p for t in metadata.topics.values() for p in t.partitions.values()]
        return node_id not in metadata.brokers and all(p.leader not in (-1, node_id) for p in partitions)

    def _in_every_isr(self, node_id: int, topics: Sequence[str]) -> bool:
        metadata = self.admin.list_topics(timeout=5)
        return all(node_id in p.isrs for t in topics for p in metadata.topics[t].partitions.values())


@contextmanager
def three_brokers(session: Settings, state_dir: Path) -> Iterator[Cluster]:
    """A 3-node cluster on its own ports and state dir; within the block ``LIVECTX_KAFKA_BOOTSTRAP_SERVERS``
    names it, so worker processes (and ``Settings()``) use it, while Redis, Postgres and the registry stay
    the session's."""
    base = session.stack.kafka_port + PORT_OFFSET
    ports = [base + i for i in range(6)]
    busy = [p for p in ports if port_is_open(session.stack.host, p)]
    assert not busy, f"ports {busy} for the test cluster are in use"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LIVECTX_STACK_STATE_DIR", str(state_dir))
        env.setenv("LIVECTX_STACK_KAFKA_PORT", str(base))
        env.setenv("LIVECTX_STACK_KAFKA_CONTROLLER_PORT", str(base + 1))
        env.setenv("LIVECTX_STACK_KAFKA_BROKERS", "3")
        env.delenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", raising=False)
        cluster_settings = Settings()
    stack = Stack(cluster_settings)
    try:
        stack.up(["kafka"])
        with pytest.MonkeyPatch.context() as env:
            env.setenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", cluster_settings.kafka_bootstrap)
            nodes = [s for s in stack.services if isinstance(s, KafkaBroker)]
            yield Cluster(nodes, Settings())
    finally:
        stack.down(["kafka"])


@dataclass
class BackgroundProducer:
    """Produces ``records`` with one idempotent producer: ``first`` of them at once, the rest after
    :meth:`go` (called right after a broker is killed), so the second part meets the failover."""

    settings: Settings
    topic: str
    records: Sequence[object]
    first: int
    errors: list[str] = field(default_factory=list)
    delivered: int = 0

    def __post_init__(self) -> None:
        self._go = threading.Event()
        self._first_done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        p = producer(self.settings)

        def on_delivery(err: object, _msg: object) -> None:
            if err is None:
                self.delivered += 1
            else:
                self.errors.append(str(err))

        def send(part: Sequence[object]) -> None:
            for record in part:
                key, value, headers = serde.encode(record)  # type: ignore[arg-type]
                p.produce(self.topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
                p.poll(0)
            assert p.flush(120) == 0

        send(self.records[: self.first])
        self._first_done.set()
        self._go.wait(300)
        send(self.records[self.first :])

    def wait_first(self, timeout_s: float = 60) -> None:
        assert self._first_done.wait(timeout_s), "the first part was not delivered"

    def go(self) -> None:
        self._go.set()

    def join(self, timeout_s: float = 180) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the producer did not finish"
        assert self.errors == [] and self.delivered == len(self.records), (self.errors[:3], self.delivered)


def wait_or_dump(condition: Callable[[], bool], timeout_s: float, log: Path, what: str) -> None:
    assert wait_until(condition, timeout_s, poll_s=0.1), f"{what} within {timeout_s:.0f}s:\n{_tail(log)}"


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
