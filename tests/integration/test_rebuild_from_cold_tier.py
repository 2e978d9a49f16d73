"""A rebuild after retention deleted the head of the log: the head is replayed from the cold tier, the rest
from the log, and the rebuilt values equal the recomputation over every event (real broker, Redis, archive).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from confluent_kafka import TopicPartition
from livectx_ingest.streaming.worker import run_features_worker

from livectx.kafka import admin_client
from livectx.tier.hot import watermarks
from tests.example import TRANSACTIONS
from tests.integration.engine_helpers import TXN_GROUPS, online_mismatches, produce, scenario_transactions
from tests.integration.kafka_helpers import create_topic
from tests.integration.test_archive import archive, tier_settings


def _run(settings, groups, group: str, topic: str, unique: str) -> None:  # type: ignore[no-untyped-def]
    run_features_worker(
        settings,
        groups=groups,
        consumer_group=group,
        worker_id=f"cold-{unique}",
        until_caught_up=True,
        topic_map={TRANSACTIONS: topic},
        write_offline=False,
        dead_letter_topic=f"test.cold-rebuild.dlq.{unique}",
    )


def test_a_rebuild_replays_the_head_retention_deleted_from_the_cold_tier(  # type: ignore[no-untyped-def]
    stack, settings, feature_store, unique, tmp_path
) -> None:
    s = tier_settings(settings, tmp_path / "tier", file_max_records=300)
    topic = create_topic(settings, f"test.cold-rebuild.{unique}", partitions=2)
    events = scenario_transactions(f"cold-{unique}", 2400)
    produce(s, topic, events)
    group = f"cold-{unique}"
    tumbling, hopping = (next(g for g in TXN_GROUPS if g.name == name) for name in ("user_txn_5m", "user_txn_1h"))
    _run(s, [tumbling, hopping], group, topic, unique)  # the old definitions' state and rows
    archive(s, topic, f"archive-{unique}")

    # Retention takes the first half of each partition off the log: only the archive holds it now.
    marks = watermarks(s, [topic])
    admin = admin_client(s)  # held: the futures need a live client
    cut = {p: high // 2 for (_t, p), (_low, high) in marks.items()}
    for future in admin.delete_records([TopicPartition(topic, p, offset) for p, offset in cut.items()]).values():
        future.result(30)
    assert all(low == cut[p] > 0 for (_t, p), (low, _high) in watermarks(s, [topic]).items())

    # A changed window: the topic's state is rebuilt, its head from the cold tier, the rest from the log.
    longer = dataclasses.replace(tumbling, window=dataclasses.replace(tumbling.window, size=timedelta(minutes=10)))
    _run(s, [longer, hopping], group, topic, unique)
    assert online_mismatches(feature_store, [longer, hopping], events) == []
