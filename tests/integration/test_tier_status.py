"""``livectx tier status``: hot and cold ranges per partition; a gap is an error (non-zero exit)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from confluent_kafka import TopicPartition

from livectx.errors import LivectxError
from livectx.kafka import admin_client
from tests.integration.kafka_helpers import create_topic
from tests.integration.test_archive import archive, produce, tier_settings


def test_status_shows_ranges_and_fails_on_a_gap(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from livectx.cli.tier import tier

    s = tier_settings(settings, tmp_path)
    topic = create_topic(settings, f"test.status.{unique}", partitions=2)
    produce(settings, topic, 200, partitions=2)
    archive(s, topic, f"g-{unique}")
    runner = CliRunner(env={"LIVECTX_TIER_URL": str(tmp_path)})

    healthy = runner.invoke(tier, ["status", "--topic", topic, "--json"], obj={})
    assert healthy.exit_code == 0, healthy.output
    rows = json.loads(healthy.stdout)
    assert [
        (r["partition"], r["hot_low"], r["hot_high"], r["cold_first"], r["cold_last"], r["gaps"]) for r in rows
    ] == [
        (0, 0, 100, 0, 99, []),
        (1, 0, 100, 0, 99, []),
    ]
    table = runner.invoke(tier, ["status"], obj={})  # default: every archived topic
    assert table.exit_code == 0 and "0..99" in table.stdout and "none" in table.stdout

    produce(settings, topic, 100, partitions=2, first=200)  # 150 per partition on the broker
    admin = admin_client(settings)  # held while its futures run
    for future in admin.delete_records([TopicPartition(topic, 1, 130)]).values():
        future.result(30)  # partition 1: offsets 100..129 gone, never archived
    gap = runner.invoke(tier, ["status", "--topic", topic, "--json"], obj={})
    assert isinstance(gap.exception, LivectxError) and "[1] offsets 100..129" in str(gap.exception)
    rows = json.loads(gap.stdout)
    assert rows[0]["gaps"] == [] and rows[1]["gaps"] == [{"from": 100, "to": 129}]
