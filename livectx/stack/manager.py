"""``livectx stack up | down | status``: the services of the local stack, as one unit."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Protocol

from livectx.settings import Settings
from livectx.stack.connect import ConnectWorker
from livectx.stack.kafka import KafkaBroker
from livectx.stack.postgres import PostgresServer
from livectx.stack.process import ManagedProcess
from livectx.stack.prometheus import PrometheusServer
from livectx.stack.redis import RedisServer
from livectx.stack.registry import SchemaRegistry


class Service(Protocol):
    name: str
    process: ManagedProcess

    @property
    def address(self) -> str: ...

    def start(self) -> int: ...

    def wait_ready(self, timeout_s: float) -> None: ...

    def is_healthy(self, timeout_s: float = ...) -> bool: ...


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None
    health: str  # "healthy" | "unhealthy" | "stopped" | "external"
    log_file: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.health in {"healthy", "external"}


class Stack:
    """The local services in start order. ``up`` is idempotent; ``down`` stops only what we started."""

    def __init__(self, settings: Settings, *, monitoring: bool | None = None, cdc: bool | None = None) -> None:
        """``monitoring`` (default: the ``LIVECTX_STACK_MONITORING`` setting) adds Prometheus, ``cdc``
        (default: ``LIVECTX_STACK_CDC``) Kafka Connect. A running optional service is always part of the
        stack, so ``down`` and ``status`` see it without the flag."""
        self.settings = settings
        redis_nodes = [RedisServer(settings, node) for node in range(max(1, settings.stack.redis_cluster_nodes))]
        self.services: list[Service] = [
            *kafka_nodes(settings),
            *redis_nodes,
            PostgresServer(settings),
            SchemaRegistry(settings),
        ]
        prometheus = PrometheusServer(settings)
        wanted = settings.stack.monitoring if monitoring is None else monitoring
        if wanted or prometheus.process.recorded_pid() is not None:
            self.services.append(prometheus)
        connect = ConnectWorker(settings)
        if (settings.stack.cdc if cdc is None else cdc) or connect.process.recorded_pid() is not None:
            self.services.append(connect)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def up(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        """Start what is not running, then wait for every service's readiness probe.

        Returns ``(service, action)`` pairs, action being ``started`` or ``already running``. The name
        ``kafka`` means every Kafka node, ``kafka-<n>`` one of them.
        """
        chosen = [s for s in self.services if _named(s.name, names)]
        actions = []
        for service in chosen:  # start all first, then probe: the JVM warms up while Redis starts
            if service.process.pid() is not None:
                actions.append((service.name, "already running"))
            else:
                service.start()
                actions.append((service.name, "started"))
        for service in chosen:
            service.wait_ready(self.settings.stack.start_timeout_s)
        return actions

    def down(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        actions = []
        nodes = [s for s in self.services if isinstance(s, KafkaBroker) and _named(s.name, names)]
        signalled = {n.name for n in nodes if n.process.pid() is not None} if len(nodes) > 1 else set()
        for node in nodes if signalled else ():  # a cluster stops together: the last node alone waits for a quorum
            node.process.signal(signal.SIGTERM)
        for service in reversed(self.services):
            if not _named(service.name, names):
                continue
            # The node that outlives the quorum never completes its controlled shutdown: bounded, then SIGKILL
            # (its log is recovered at the next start; the data are on disk).
            stopped = service.process.stop(10.0 if service.name in signalled else 30.0) or service.name in signalled
            actions.append((service.name, "stopped" if stopped else "not running"))
        return actions

    def status(self) -> list[ServiceStatus]:
        rows = []
        for service in self.services:
            pid = service.process.pid()
            recorded = service.process.recorded_pid()
            healthy = service.is_healthy()
            if pid is not None:
                health, detail = ("healthy", "") if healthy else ("unhealthy", "running but not answering")
            elif recorded is not None:  # we started it and nobody stopped it through us: it died
                health, detail = "unhealthy", f"process {recorded} died; `livectx stack up` restarts it"
                if healthy:
                    detail += " (another process answers on its port)"
            else:
                health, detail = ("external", "not started by livectx") if healthy else ("stopped", "")
            rows.append(
                ServiceStatus(
                    service.name, service.address, pid or recorded, health, str(service.process.log_file), detail
                )
            )
        return rows

    def is_up(self) -> bool:
        return all(row.ok for row in self.status())


def kafka_nodes(settings: Settings) -> list[KafkaBroker]:
    """The configured nodes, and any other node that still runs from an earlier, larger cluster (so that
    ``down`` and ``status`` see it)."""
    wanted = settings.stack.kafka_brokers
    nodes = [KafkaBroker(settings, n) for n in range(1, 6)]
    return [node for node in nodes if node.node <= wanted or node.process.recorded_pid() is not None]


def _named(name: str, names: list[str] | None) -> bool:
    """``kafka`` names every Kafka node (``kafka``, ``kafka-2``, ...) and ``redis`` every Redis Cluster node,
    as each names its one server."""
    return names is None or name in names or any(name.startswith(f"{n}-") for n in names if n in {"kafka", "redis"})
