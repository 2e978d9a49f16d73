"""What each process of a live bench takes of the machine's cores, over the measured span.

A freshness figure on a 2-core machine depends on everything else running there: the broker, Redis and the
feeder share the cores with the engine under test, and a p99 that swings from run to run says little about
which of them moved. CPU is the steadier figure: the engine's CPU per event is what a change to the engine
moves, and each process's share says how close the machine ran to full. ``bench features`` reports both
for its freshness runs (``freshness_engine_cpu_us_per_event``, ``freshness_<process>_cores``).

The engine is this process (the bench runs it in-process): its CPU time counts every thread, librdkafka's
included. Servers are read from ``/proc`` by PID, so only the local stack's (configured external services
have none here); the feeder measures its own paced loop and reports it.
"""

from __future__ import annotations

import time
from typing import Any

from livectx.settings import Settings
from livectx_benchmarks.soak_procs import cpu_s

#: The servers whose share is reported, as the local stack names them.
SERVERS = ("kafka", "redis")


def local_servers(settings: Settings) -> dict[str, int]:
    """PIDs of the local stack's broker and Redis; none when the bench uses configured external services."""
    if settings.external_services:
        return {}
    from livectx.stack.manager import Stack

    return {s.name: s.pid for s in Stack(settings).status() if s.name in SERVERS and s.pid is not None}


class CpuShares:
    """CPU seconds of this process and of ``servers`` between :meth:`start` and :meth:`stop` (each at most
    once: the first call counts)."""

    def __init__(self, servers: dict[str, int], clock: Any = time.perf_counter, cpu: Any = time.process_time) -> None:
        self._servers = servers
        self._clock, self._cpu = clock, cpu
        self._start: dict[str, float] = {}
        self._stop: dict[str, float] = {}

    def start(self) -> None:
        if not self._start:
            self._start = self._read()

    def stop(self) -> None:
        if self._start and not self._stop:
            self._stop = self._read()

    def figures(self, events: int, feeder_cpu_s: float, feeder_wall_s: float) -> dict[str, float]:
        """``engine_cpu_us_per_event`` and ``<process>_cores`` (CPU seconds per second of its span); empty
        when the span was never started and stopped."""
        if not self._stop:
            return {}
        wall = self._stop["wall"] - self._start["wall"]
        used = {name: self._stop[name] - self._start[name] for name in self._stop if name != "wall"}
        out = {"engine_cpu_us_per_event": used["engine"] / max(1, events) * 1e6}
        out |= {f"{name}_cores": seconds / wall for name, seconds in used.items() if wall > 0}
        if feeder_wall_s > 0:
            out["feeder_cores"] = feeder_cpu_s / feeder_wall_s
        return out

    def _read(self) -> dict[str, float]:
        return {"wall": self._clock(), "engine": self._cpu(), **{n: cpu_s(p) for n, p in self._servers.items()}}
