from __future__ import annotations

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from livectx.kafka import admin_client
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import wait_until
from livectx.topics import TopicSpec, apply, plan


def _actions(changes) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(c.topic, c.action) for c in changes]


def _retention(admin, topic: str) -> str:  # type: ignore[no-untyped-def]
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(10)["retention.ms"].value


def test_apply_creates_is_idempotent_and_repairs_drift(settings: Settings, stack: Stack, unique: str) -> None:
    admin = admin_client(settings)
    events = TopicSpec(f"t.{unique}.events", 2, {"cleanup.policy": "delete", "retention.ms": "3600000"})
    configs = TopicSpec(f"t.{unique}.configs", 1, {"cleanup.policy": "compact", "delete.retention.ms": "86400000"})
    try:
        assert _actions(apply(admin, [events, configs])) == [(events.name, "create"), (configs.name, "create")]
        assert _actions(apply(admin, [events, configs])) == [(events.name, "unchanged"), (configs.name, "unchanged")]
        metadata = admin.list_topics(timeout=10).topics
        assert len(metadata[events.name].partitions) == 2

        # Someone changes retention by hand: plan shows the drift, apply puts the declared value back.
        drift = ConfigResource(
            ResourceType.TOPIC,
            events.name,
            incremental_configs=[ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)],
        )
        admin.incremental_alter_configs([drift])[drift].result(10)
        # The controller accepted the change; brokers apply config metadata asynchronously (KRaft), so
        # a describe right after can still show the old value for a moment.
        assert wait_until(lambda: _retention(admin, events.name) == "1000", 10)
        changes = plan(admin, [events])
        assert _actions(changes) == [(events.name, "alter config")]
        assert "retention.ms=3600000" in changes[0].detail
        apply(admin, [events])
        assert wait_until(lambda: _retention(admin, events.name) == "3600000", 10), _retention(admin, events.name)

        # More partitions declared: added. Fewer: a warning, never a silent no-op.
        grown = TopicSpec(events.name, 4, events.config)
        assert _actions(apply(admin, [grown])) == [(events.name, "add partitions")]
        assert len(admin.list_topics(timeout=10).topics[events.name].partitions) == 4
        assert _actions(plan(admin, [events])) == [(events.name, "warning")]
    finally:
        admin.delete_topics([events.name, configs.name])
