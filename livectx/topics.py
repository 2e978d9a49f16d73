"""Topics as code: the platform's topics and the repo's sources, their partitions and retention, applied
idempotently.

Retention is a reviewed setting, not a broker default someone forgot about: every topic the platform
writes is declared here, and every source topic in the feature repo, with its ``cleanup.policy`` and
``retention.*``; ``livectx topics apply`` creates what is missing, raises partition counts and corrects
config drift.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from livectx.errors import LivectxError, NotReachableError

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class TopicSpec:
    """One topic's desired state. ``config`` holds broker topic configs as strings."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


DECISIONS = "livectx.decisions"
DEAD_LETTER = "livectx.dead-letter"
LATE_EVENTS = "livectx.late-events"
MODELS = "livectx.models"


def _events(days: int, partitions: int = 3, **extra: str) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS), "retention.bytes": "-1", **extra}


#: The platform's own topics. A domain's topics are its sources', declared in the feature repo
#: (:meth:`livectx.repo.compiled.Repo.topic_specs`); ``livectx topics apply`` applies both.
PLATFORM_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(DECISIONS, 3, _events(30), "agents' decisions (approve/decline, routing), keyed by entity"),
    TopicSpec(DEAD_LETTER, 1, _events(14), "records a worker could not process, reason in headers"),
    TopicSpec(LATE_EVENTS, 1, _events(14), "events too late for their feature windows (beyond grace)"),
    # Compacted: the latest model/config version per key survives forever; tombstones retire a key and
    # are kept for delete.retention.ms, which must exceed the longest expected agent downtime.
    TopicSpec(
        MODELS,
        1,
        {
            "cleanup.policy": "compact",
            "delete.retention.ms": str(7 * DAY_MS),
            "min.compaction.lag.ms": "0",
            "segment.ms": str(HOUR_MS),
        },
        "model and config versions, keyed by name (compacted)",
    ),
)


#: The plan actions that change the cluster (``apply`` waits until none is left to do).
PENDING = ("create", "add partitions", "alter config")


@dataclass(frozen=True)
class Replication:
    """How many copies new topics get (``-1``: the broker's ``default.replication.factor``) and, when set,
    the ``min.insync.replicas`` every declared topic carries (with ``acks=all``, the copies a write needs)."""

    factor: int = -1
    min_insync: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Replication:
        return cls(settings.kafka.replication_factor, settings.kafka.min_insync_replicas)

    def declare(self, specs: Iterable[TopicSpec]) -> list[TopicSpec]:
        """The specs with ``min.insync.replicas`` in their config, so a drift is corrected like any other."""
        if self.min_insync is None:
            return list(specs)
        extra = {"min.insync.replicas": str(self.min_insync)}
        return [TopicSpec(s.name, s.partitions, {**s.config, **extra}, s.purpose) for s in specs]

    @property
    def described(self) -> str:
        return "broker default" if self.factor == -1 else str(self.factor)


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # "create" | "alter config" | "add partitions" | "unchanged" | "warning"
    detail: str = ""


def declared_topics(repo: Any) -> tuple[TopicSpec, ...]:
    """The platform's topics and the repo's source topics (a :class:`~livectx.repo.compiled.Repo`)."""
    platform = {t.name for t in PLATFORM_TOPICS}
    clash = [t.name for t in repo.topic_specs() if t.name in platform]
    if clash:
        raise LivectxError(f"the feature repo declares a source on the platform topic {clash[0]}: rename the topic")
    return (*repo.topic_specs(), *PLATFORM_TOPICS)


def plan(admin: Any, specs: Iterable[TopicSpec], replication: Replication | None = None) -> list[TopicChange]:
    """Compare the declared topics with the cluster and list what ``apply`` would change, with each
    topic's replication (a differing replication factor is a warning: changing it is a reassignment)."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    replication = replication or Replication()
    specs = replication.declare(specs)
    try:
        existing = admin.list_topics(timeout=10).topics
    except Exception as exc:
        raise NotReachableError(f"cannot list Kafka topics ({exc}): run `livectx stack up`") from None
    changes: list[TopicChange] = []
    to_describe = [s for s in specs if s.name in existing]
    configs: dict[str, dict[str, str]] = {}
    if to_describe:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, s.name) for s in to_describe])
        for resource, future in futures.items():
            configs[resource.name] = {k: v.value for k, v in future.result().items()}
    for spec in specs:
        if spec.name not in existing:
            detail = f"{spec.partitions} partitions, replication {replication.described}, {_fmt(spec.config)}"
            changes.append(TopicChange(spec.name, "create", detail))
            continue
        actual_partitions = len(existing[spec.name].partitions)
        replicas = min((len(p.replicas) for p in existing[spec.name].partitions.values()), default=0)
        if replication.factor not in (-1, replicas):
            changes.append(
                TopicChange(
                    spec.name,
                    "warning",
                    f"has replication {replicas}, declared {replication.factor}: `topics apply` does not "
                    "reassign replicas (kafka-reassign-partitions does)",
                )
            )
        if spec.partitions > actual_partitions:
            changes.append(TopicChange(spec.name, "add partitions", f"{actual_partitions} -> {spec.partitions}"))
        elif spec.partitions < actual_partitions:
            changes.append(
                TopicChange(
                    spec.name,
                    "warning",
                    f"has {actual_partitions} partitions, declared {spec.partitions}: "
                    "Kafka cannot remove partitions; update the declaration",
                )
            )
        drift = {k: v for k, v in spec.config.items() if configs[spec.name].get(k) != v}
        if drift:
            changes.append(TopicChange(spec.name, "alter config", _fmt(drift)))
        if spec.partitions == actual_partitions and not drift:
            changes.append(TopicChange(spec.name, "unchanged", f"replication {replicas}"))
    return changes


def apply(
    admin: Any, specs: Iterable[TopicSpec], timeout_s: float = 30.0, replication: Replication | None = None
) -> list[TopicChange]:
    """Make the cluster match the declarations. Safe to run any number of times."""
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
        ResourceType,
    )

    replication = replication or Replication()
    by_name = {s.name: s for s in replication.declare(specs)}
    changes = plan(admin, by_name.values(), replication)
    creates = [
        NewTopic(
            c.topic,
            num_partitions=by_name[c.topic].partitions,
            replication_factor=replication.factor,
            config=dict(by_name[c.topic].config),
        )
        for c in changes
        if c.action == "create"
    ]
    partitions = [NewPartitions(c.topic, by_name[c.topic].partitions) for c in changes if c.action == "add partitions"]
    alters = [
        ConfigResource(
            ResourceType.TOPIC,
            c.topic,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in by_name[c.topic].config.items()
            ],
        )
        for c in changes
        if c.action == "alter config"
    ]
    for futures in (
        admin.create_topics(creates, operation_timeout=timeout_s) if creates else {},
        admin.create_partitions(partitions, operation_timeout=timeout_s) if partitions else {},
        admin.incremental_alter_configs(alters) if alters else {},
    ):
        for name, future in futures.items():
            try:
                future.result(timeout=timeout_s)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):  # a concurrent apply won the race: fine
                    continue
                raise LivectxError(f"applying topic {getattr(name, 'name', name)} failed: {exc}") from None
    if creates or partitions or alters:
        _wait_until_visible(admin, [by_name[c.topic] for c in changes if c.action in PENDING], timeout_s)
    return changes


def _wait_until_visible(admin: Any, specs: list[TopicSpec], timeout_s: float) -> None:
    """Return once the brokers show what was applied: the controller acknowledges a change before every
    broker has applied it (KRaft metadata propagates asynchronously), and a caller's next step (a
    producer, a worker, another ``plan``) must see the declared topics."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pending = [c for c in plan(admin, specs) if c.action in PENDING]
        except Exception as exc:  # a broker that has not learned of a new topic yet answers "unknown"
            if "UNKNOWN_TOPIC_OR_PART" not in str(exc):
                raise
            pending = [TopicChange(specs[0].name, "create")]
        if not pending:
            return
        if time.monotonic() > deadline:
            first = pending[0]
            raise LivectxError(
                f"topic {first.topic}: applied, but the cluster still shows it as '{first.action}' after {timeout_s:g}s"
            )
        time.sleep(0.05)  # polling the cluster's view with a deadline


def _fmt(config: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
