"""Kafka clients built from settings, so every worker and tool talks to the cluster the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livectx.errors import NotReachableError
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient


def admin_client(settings: Settings) -> AdminClient:
    from confluent_kafka.admin import AdminClient

    return AdminClient(settings.kafka_config())


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer (no duplicates on retry, per-partition order kept), batching briefly."""
    from confluent_kafka import Producer

    config = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4"}
    return Producer(settings.kafka_config(**{**config, **overrides}))


def consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that never auto-commits: workers commit only after their side effects succeeded."""
    from confluent_kafka import Consumer

    config = {
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Once the local queue passes its threshold librdkafka postpones the next fetch by this much
        # (default 1 s): a worker that drains its queue in bursts then sits idle for up to a second
        # (measured: raw consume of a 390k-record backlog at 110k/s instead of 230k/s).
        "fetch.queue.backoff.ms": 5,
    }
    return Consumer(settings.kafka_config(**{**config, **overrides}))


def require_reachable(settings: Settings, timeout_s: float = 5.0) -> None:
    """Fail fast with a fix instead of letting librdkafka retry silently forever."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka_config(**{"log_level": 0}))
    try:
        metadata = admin.list_topics(timeout=timeout_s)
        if not metadata.brokers:
            raise RuntimeError("no brokers in metadata")
    except Exception:
        raise NotReachableError(
            f"Kafka at {settings.kafka_bootstrap} is not reachable: run `livectx stack up` "
            "or set LIVECTX_KAFKA_BOOTSTRAP_SERVERS"
        ) from None
