"""``soak``: everything at once for minutes, as separate processes like production (issue 19, item 5).

On the stack the bench finds (or starts: Kafka, Redis, Postgres; it stops what it started), with topics,
consumer groups and a vector index of its own:

- the feature worker, ``livectx ingest run features`` (the payment views of ``fraud_features``,
  exactly-once, no offline copy), fed ``rate`` (5,000) payments/s stamped with the wall clock by a
  producer process;
- the embedding worker, ``livectx ingest run embeddings`` (the ``tickets_memory`` view), fed
  ``texts_rate`` (50) support tickets/s by another;
- the fraud agent, ``livectx agents run fraud`` (rules, its transactional loop), deciding ``agent_rate``
  (100) payments/s of the same users, each decision a ``get_context`` of the user's streaming features.

The minutes are the feature worker's own report intervals (``--metrics-interval``): at each report the
bench reads the interval's freshness p50/p99 from the worker's metrics file (every row written in the
interval: visible minus its newest event time, what the worker measures and exports), each group's lag
(records behind the log end) and committed offsets, the RSS of every process (workers, producers, agent,
broker, Redis, Postgres) and Redis ``used_memory``. A quiet baseline minute comes first, in the same run:
the feature worker and its producer working, the other processes started and idle; the soak's minutes
follow. At the end the feeders stop, every group drains, and the workers' closing tables give the totals
(events processed against produced, vectors written, decisions).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import click

from livectx.errors import LivectxError
from livectx.kafka import admin_client, producer, require_reachable
from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.redis_client import redis_client
from livectx.settings import Settings
from livectx.topics import PLATFORM_TOPICS, TopicSpec, apply
from livectx_benchmarks import quota_procs, soak_procs
from livectx_benchmarks.children import Children
from livectx_benchmarks.example import TRANSACTIONS
from livectx_benchmarks.features import _send, payment_groups
from livectx_benchmarks.quota_setup import _free_port
from livectx_benchmarks.result import BenchResult, BenchTable
from livectx_benchmarks.soak_figures import GROUPS, Sample, figures, progress_line, tables, worst_process

MINUTES = 10.0
RATE = 5_000.0  # payments/s into the feature worker
TEXTS_RATE = 50.0  # texts/s into the embedding worker
AGENT_RATE = 100.0  # payments/s the fraud agent decides
MINUTE_S = 60.0  # one row of the per-minute table
WARMUP = 1.0  # minutes of the soak before the RSS growth is measured from
SERVICES = ["kafka", "redis", "postgres"]
MEMORY_VIEW = "tickets_memory"
PARTITIONS = 3
READY_S = 240.0  # at most, for the workers and the agent to start and take their first record
DRAIN_S = 180.0  # at most, after the feeders stop, for every group to reach the log end


def run(
    settings: Settings,
    scale: float = 1.0,
    minutes: float = MINUTES,
    rate: float = RATE,
    texts_rate: float = TEXTS_RATE,
    agent_rate: float = AGENT_RATE,
    minute_s: float = MINUTE_S,
    warmup: float = WARMUP,
) -> BenchResult:
    """The soak; ``scale`` multiplies its length.

    Raises:
        LivectxError: an option out of range (one line, before anything starts).
    """
    limits = (("minutes", minutes, 0.05), ("rate", rate, 1.0), ("texts_rate", texts_rate, 0.1),
              ("agent_rate", agent_rate, 0.1), ("minute_s", minute_s, 2.0), ("warmup", warmup, 0.0))  # fmt: skip
    for name, value, low in limits:
        if not value >= low:
            flag = "--minutes" if name == "minutes" else f"-o {name}"
            raise LivectxError(f"bench soak: {flag} {value:g} must be at least {low:g}")
    total_s = minutes * 60.0 * scale
    rows = max(1, round(total_s / minute_s))
    interval = max(2.0, total_s / rows)
    rates = {"features": rate, "memory": texts_rate, "agent": agent_rate}
    with _stack(settings) as (servers, where):
        require_reachable(settings)
        soak = _Soak(settings, interval, rates)
        samples = soak.measure(rows, servers)
    warm = min(int(warmup), rows)
    result = BenchResult("soak")
    result.figures = {
        **figures(samples, warm, rates),
        "minute_s": interval,
        "rate": rate,
        "texts_rate": texts_rate,
        "agent_rate": agent_rate,
        **soak.totals,
        "decisions_degraded_share": soak.totals["decisions_degraded"] / soak.totals["decisions"]
        if soak.totals.get("decisions")
        else math.nan,
        "load_1m_start": soak.load[0],
        "load_1m_end": soak.load[1],
    }
    result.tables += [BenchTable(title, columns, body) for title, columns, body in tables(samples)]
    result.notes += [
        f"on {where}; the feature worker over {len(payment_groups())} payment views (exactly-once, no offline "
        f"copy) at {rate:g} payments/s, the embedding worker ({MEMORY_VIEW}) at {texts_rate:g} texts/s, the "
        f"fraud agent (rules) deciding {agent_rate:g} payments/s; {rows} minute(s) of {interval:g} s after a "
        f"quiet baseline minute; 1-min load {soak.load[0]:.1f} -> {soak.load[1]:.1f}",
        f"RSS growth after {warm} warm-up minute(s): worst {worst_process(samples, warm)} "
        f"{result.figures['rss_growth_pct']:.1f}% (target < 10%); freshness p99 worst minute "
        f"{result.figures['freshness_p99_ms_worst_minute']:.1f} ms (target < 100), baseline "
        f"{result.figures['freshness_p99_ms_baseline']:.1f} ms; lag at the end {result.figures['lag_end']:,.0f}",
        f"targets: rss {_yes(result.figures['target_rss'])}, lag {_yes(result.figures['target_lag'])}, "
        f"freshness {_yes(result.figures['target_freshness'])}",
    ]
    return result


def _yes(flag: float) -> str:
    return "met" if flag else "NOT met"


@contextlib.contextmanager
def _stack(settings: Settings) -> Iterator[tuple[dict[str, int], str]]:
    """The servers to soak on and their PIDs (for their RSS): the local stack, its Kafka, Redis and
    Postgres started if they are down and stopped afterwards if they were; configured external services
    are used as they are, without server figures."""
    if settings.external_services:
        yield {}, "the configured services (not the local stack: no server RSS)"
        return
    from livectx.stack.manager import Stack

    stack = Stack(settings)
    started = [name for name, action in stack.up(SERVICES) if action == "started"]
    try:
        pids = {s.name: s.pid for s in stack.status() if s.name in SERVICES and s.pid is not None}
        where = f"the local stack in {settings.stack.state_dir}"
        yield pids, where + (f" (started {', '.join(started)})" if started else "")
    finally:
        if started:
            stack.down(started)


class _Names:
    """The soak's own topics, consumer groups and vector index, under a tag of the run's own: a soak reads and
    writes nothing another run (or the product) uses, and removes what it made."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.topics = {g: f"livectx.bench.soak-{g}.{self.tag}" for g in GROUPS}
        self.decisions, self.dlq = f"livectx.bench.soak-decisions.{self.tag}", f"livectx.bench.dlq.{self.tag}"
        self.groups = {g: f"bench-soak-{g}-{self.tag}" for g in GROUPS}
        self.index = f"bench_soak_{self.tag}"


class _Soak:
    """One soak: its names, its child processes, and what it measured beside the samples (``totals``, the
    1-minute ``load`` at the start and the end)."""

    def __init__(self, settings: Settings, interval: float, rates: dict[str, float]) -> None:
        self.settings, self.interval, self.rates = settings, interval, rates
        self.names = _Names()
        self.children = Children("the soak", "livectx-bench-soak-")
        self.totals: dict[str, float] = {}
        self.sent: dict[str, Any] = {}
        self.load = (math.nan, math.nan)
        self.report = settings.stack.state_dir / "metrics" / f"{self.names.groups['features']}-soak.json"

    def measure(self, minutes: int, servers: dict[str, int]) -> list[Sample]:
        from livectx.repo import current_repo

        self.ticket_topic = current_repo(self.settings).memory[MEMORY_VIEW].topic
        admin = admin_client(self.settings)
        topics = [*self.names.topics.values(), self.names.decisions, self.names.dlq]
        apply(admin, [*PLATFORM_TOPICS, *(TopicSpec(t, PARTITIONS, {"retention.ms": "3600000"}) for t in topics)])
        self.servers = servers
        stops: list[Any] = []
        try:
            return self._measure(minutes, stops)
        finally:
            for stop in stops:
                stop.set()
            self.children.end_all()
            for future in admin.delete_topics(topics).values():
                with contextlib.suppress(Exception):
                    future.result(30)
            self._drop_index()

    def _measure(self, minutes: int, stops: list[Any]) -> list[Sample]:
        self.load = (os.getloadavg()[0], math.nan)
        self._start_workers()
        spawn, n = self.children.spawn, self.names
        sent = {name: spawn.Value("d", 0.0) for name in ("producer", "texts", "agent_feed")}
        self.sent = {"features": sent["producer"], "memory": sent["texts"], "agent": sent["agent_feed"]}
        go_payments, go_load, stop_payments, stop_load = (spawn.Event() for _ in range(4))
        stops += [stop_payments, stop_load, go_payments, go_load]  # a feeder still waiting to go ends too
        feeders = {
            "producer": (go_payments, quota_procs.feed, n.topics["features"], self.rates["features"], n.tag,
                         stop_payments, sent["producer"]),
            "texts": (go_load, soak_procs.texts, {self.ticket_topic: n.topics["memory"]}, self.rates["memory"],
                      19, stop_load, sent["texts"]),
            "agent_feed": (go_load, quota_procs.feed, n.topics["agent"], self.rates["agent"], n.tag, stop_load,
                           sent["agent_feed"]),
        }  # fmt: skip
        ready = {name: spawn.Event() for name in feeders}
        for name, (go, *args) in feeders.items():
            self.children.process(name, soak_procs.gated, ready[name], go, *args)
        self._warm_up(ready)
        go_payments.set()
        fed_from = time.time()
        start = Sample(-1, fed_from, 0.0)
        start.cpu_s = {name: soak_procs.cpu_s(child.pid) for name, child in self.children.running.items()}
        start.cpu_s.update({name: soak_procs.cpu_s(pid, tree=name == "postgres") for name, pid in self.servers.items()})
        samples = [start, self._sample(0, self._next_report(after=fed_from + 0.9 * self.interval))]
        click.echo(progress_line(samples[-1], minutes), err=True)
        go_load.set()
        for minute in range(1, minutes + 1):
            samples.append(self._sample(minute, self._next_report(after=samples[-1].at + 0.5)))
            click.echo(progress_line(samples[-1], minutes), err=True)
        self.load = (self.load[0], os.getloadavg()[0])
        stop_payments.set()
        stop_load.set()
        for name in feeders:
            self.children[name].join(60)
        self._drain()
        self.totals["events_sent"], self.totals["texts_sent"] = sent["producer"].value, sent["texts"].value
        self.totals["agent_payments_sent"] = sent["agent_feed"].value
        return samples

    def _start_workers(self) -> None:
        """The two workers and the agent, as production starts them, each logging to its own file."""
        cmd = soak_procs.livectx_command
        s, n = self.settings, self.names
        features = cmd(s, "ingest", "run", "features", "--groups", ",".join(g.name for g in payment_groups()),
                       "--group", n.groups["features"], "--worker-id", "soak",
                       "--source-topic", f"{TRANSACTIONS}={n.topics['features']}", "--dead-letter-topic", n.dlq,
                       "--no-offline", "--metrics-interval", f"{self.interval:g}",
                       "--metrics-port", str(_free_port()))  # fmt: skip
        memory = cmd(s, "ingest", "run", "embeddings", "--view", MEMORY_VIEW, "--group", n.groups["memory"],
                     "--worker-id", "soak", "--source-topic", f"{self.ticket_topic}={n.topics['memory']}",
                     "--dead-letter-topic", n.dlq, "--metrics-port", str(_free_port()))  # fmt: skip
        agent = cmd(s, "agents", "run", "fraud", "--group", n.groups["agent"], "--worker-id", f"soak-{n.tag}",
                    "--source-topic", n.topics["agent"], "--decisions-topic", n.decisions,
                    "--metrics-port", str(_free_port()))  # fmt: skip
        env = {**os.environ, "COLUMNS": "200", "LIVECTX_VECTOR_INDEX": n.index}
        for name, command in (("embeddings", memory), ("agent", agent), ("features", features)):
            self.children.command(name, command, env)

    def _warm_up(self, ready: dict[str, Any]) -> None:
        """One record for each worker and the agent; wait until each group committed it (started, assigned,
        model loaded) and every feeder has loaded what it needs: start-up is not what the soak measures."""
        n, children = self.names, self.children
        p = producer(self.settings)
        _send(p, n.topics["features"], f"{n.tag}-warm", 0)
        _send(p, n.topics["agent"], f"{n.tag}-warm", 0)
        if p.flush(30):
            raise RuntimeError("the warm-up payments were not acknowledged")
        soak_procs.warm_ticket(self.settings, n.topics["memory"], self.ticket_topic, n.tag)
        deadline = time.monotonic() + READY_S
        for group in GROUPS:
            targets = end_offsets(self.settings, [n.topics[group]])
            failure = f"the {group} process took no record within {READY_S:g} s; see {children.logs}"
            children.wait_caught_up(self.settings, n.groups[group], targets, deadline, failure)
        for name, event in ready.items():
            children.wait_set(event, deadline, f"the {name} feeder was not ready within {READY_S:g} s")

    def _next_report(self, after: float) -> dict[str, Any]:
        """The feature worker's next metrics report written at or after ``after`` (epoch s)."""
        deadline = time.monotonic() + self.interval * 3 + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                report = json.loads(self.report.read_text())
                if report["at_ms"] / 1000 >= after:
                    return report
            self.children.check_alive()
            time.sleep(0.2)  # polling the worker's report file, written every interval
        raise RuntimeError(f"the feature worker wrote no metrics report to {self.report} in time")

    def _sample(self, minute: int, report: dict[str, Any]) -> Sample:
        at = report["at_ms"] / 1000
        sample = Sample(minute, at, self.interval, freshness_rows=int(report.get("rows_in_interval") or 0))
        for name, key in (("freshness_p50_ms", "freshness_p50_ms"), ("freshness_p99_ms", "freshness_p99_ms")):
            value = report.get(key)
            setattr(sample, name, math.nan if value is None else float(value))
        sample.sent = {group: counter.value for group, counter in self.sent.items()}
        for group in GROUPS:
            sample.lag[group], sample.committed[group] = soak_procs.lag(self.settings, self.names.groups[group],
                                                                        self.names.topics[group])  # fmt: skip
        for name, child in self.children.running.items():
            sample.rss_mb[name], sample.cpu_s[name] = soak_procs.rss_mb(child.pid), soak_procs.cpu_s(child.pid)
        for name, pid in self.servers.items():
            postgres = name == "postgres"
            sample.rss_mb[name] = soak_procs.tree_pss_mb(pid) if postgres else soak_procs.rss_mb(pid)
            sample.cpu_s[name] = soak_procs.cpu_s(pid, tree=postgres)
        sample.redis_mb = float(redis_client(self.settings).info("memory")["used_memory"]) / 2**20
        return sample

    def _drain(self) -> None:
        """Every group to the log end (the feeders stopped), then the workers' and the agent's closing
        tables: what each processed, against what was produced."""
        for group in GROUPS:
            targets = end_offsets(self.settings, [self.names.topics[group]])
            self.totals[f"produced_{group}"] = float(sum(targets.values()))
            drained = wait_for_caught_up(self.settings, self.names.groups[group], targets, timeout_s=DRAIN_S)
            self.totals[f"drained_{group}"] = float(drained)
        for name in ("features", "embeddings", "agent"):
            soak_procs.end_child(self.children[name])
        out = {name: self.children.log(name) for name in ("features", "embeddings", "agent")}
        self.totals["events_processed"] = soak_procs.closing_figure(out["features"], "events processed")
        self.totals["rows_written"] = soak_procs.closing_figure(out["features"], "rows written online")
        self.totals["texts_consumed"] = soak_procs.closing_figure(out["embeddings"], "consumed")
        self.totals["vectors_written"] = soak_procs.closing_figure(out["embeddings"], "embedded")
        self.totals["vectors_deleted"] = soak_procs.closing_figure(out["embeddings"], "deleted")
        self.totals["texts_dead_lettered"] = soak_procs.closing_figure(out["embeddings"], "dead_lettered")
        self.totals["decisions"] = soak_procs.closing_figure(out["agent"], "payments decided")
        self.totals["decisions_degraded"] = soak_procs.closing_figure(out["agent"], "decided on a degraded context")

    def _drop_index(self) -> None:
        if self.settings.vector.backend != "pgvector":
            return
        from livectx.vectors.pgvector_store import PgVectorStore

        with contextlib.suppress(Exception):  # the worker may never have created it
            store = PgVectorStore.from_settings(self.settings, index=self.names.index)
            store.drop()
            store.close()
