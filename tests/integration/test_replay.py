"""Replay against the real broker: archive + hot tail without gap or overlap, by time, merged by event
time, the ``livectx replay`` CLI, and ``reset-offsets`` moving a real group."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from livectx.errors import LivectxError
from livectx.kafka import admin_client, consumer, producer
from livectx.offsets import wait_for_caught_up
from livectx.tier.replay import ReplayStats, replay
from tests.integration.kafka_helpers import create_topic
from tests.integration.test_archive import START, archive, produce, tier_settings


def _table(batches) -> pa.Table:  # type: ignore[no-untyped-def]
    return pa.Table.from_batches(list(batches))


def test_replay_continues_from_the_archive_into_the_hot_tail(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path, file_max_records=70)
    topic = create_topic(settings, f"test.replay.{unique}", partitions=3)
    produce(settings, topic, 600, partitions=3)
    archive(s, topic, f"g-{unique}")
    produce(settings, topic, 300, partitions=3, first=600)  # only on the broker

    stats = ReplayStats()
    table = _table(replay(s, [topic], batch_size=64, stats=stats))
    assert (stats.cold_records, stats.hot_records) == (600, 300)
    assert table["topic"].unique().to_pylist() == [topic]
    assert table.schema.field("event_time").type == pa.timestamp("ms", tz="UTC")
    for partition in range(3):
        part = table.filter(pa.compute.equal(table["partition"], partition))
        assert part["offset"].to_pylist() == list(range(300))

    # An offset window that straddles the two tiers.
    window = _table(replay(s, [topic], start={0: 150}, end={0: 250, 1: 0, 2: 0}))
    assert window["offset"].to_pylist() == list(range(150, 250)) and set(window["partition"].to_pylist()) == {0}

    # By event time: [start + 30 s, start + 90 s) = events 150..449, from both tiers.
    by_time = _table(
        replay(s, [topic], by="time", start=START + timedelta(seconds=30), end=START + timedelta(seconds=90))
    )
    times = by_time["event_time"].cast(pa.int64()).to_pylist()
    lo, hi = (int((START + timedelta(seconds=x)).timestamp() * 1000) for x in (30, 90))
    assert len(times) == 300 and all(lo <= t < hi for t in times)

    # Merged by event time: globally sorted here (each partition is), every record once.
    merged = _table(replay(s, [topic], merge_by_event_time=True, batch_size=50))
    merged_times = merged["event_time"].cast(pa.int64()).to_pylist()
    assert merged_times == sorted(merged_times) and merged.num_rows == 900
    assert sorted(zip(merged["partition"].to_pylist(), merged["offset"].to_pylist(), strict=True)) == sorted(
        zip(table["partition"].to_pylist(), table["offset"].to_pylist(), strict=True)
    )


def test_replay_cli_prints_and_exports(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from livectx.cli.replay import replay as replay_cli

    s = tier_settings(settings, tmp_path / "archive")
    topic = create_topic(settings, f"test.replay-cli.{unique}")
    produce(settings, topic, 50)
    archive(s, topic, f"g-{unique}")
    p = producer(settings)
    p.produce(topic, key=b"k", value=b"\xff not json")  # malformed: kept raw, replayed raw
    p.flush(10)

    runner = CliRunner(env={"LIVECTX_TIER_URL": str(tmp_path / "archive")})
    result = runner.invoke(replay_cli, ["range", "--topic", topic, "--from", "45"], obj={})
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["offset"] for r in lines] == [45, 46, 47, 48, 49, 50]
    assert lines[0]["value"]["txn_id"] == "t45" and lines[-1]["value_b64"]
    assert "5 from 1 archived files, 1 from the broker" in result.stderr

    out = tmp_path / "out.parquet"
    result = runner.invoke(replay_cli, ["range", "--topic", topic, "--out", str(out)], obj={})
    assert result.exit_code == 0, result.output
    assert pq.read_table(out)["offset"].to_pylist() == list(range(51))
    jsonl = tmp_path / "out.jsonl"
    start = (START + timedelta(seconds=2)).isoformat()
    result = runner.invoke(replay_cli, ["range", "--topic", topic, "--from", start, "--to", "2030-01-01T00:00:00Z",
                                        "--out", str(jsonl)], obj={})  # fmt: skip
    assert result.exit_code == 0, result.output
    # Events 10..49 by event time, plus the malformed record (its event time is its Kafka timestamp, now).
    assert [json.loads(x)["offset"] for x in jsonl.read_text().splitlines()] == list(range(10, 51))
    bad = runner.invoke(replay_cli, ["range", "--topic", topic, "--from", "5", "--to", start], obj={})
    # The root CLI prints a LivectxError as one red line; invoked directly, the group raises it.
    assert isinstance(bad.exception, LivectxError) and "both be offsets or both be datetimes" in str(bad.exception)


def test_reset_offsets_moves_an_idle_group_to_a_time(stack, settings, unique) -> None:  # type: ignore[no-untyped-def]
    from livectx.cli.replay import replay as replay_cli

    topic = create_topic(settings, f"test.reset.{unique}", partitions=2)
    p = producer(settings)
    base = datetime.now(UTC) - timedelta(hours=2)
    for i in range(40):  # Kafka timestamps one minute apart, set explicitly
        p.produce(
            topic,
            value=b"x",
            key=str(i).encode(),
            partition=i % 2,
            timestamp=int((base + timedelta(minutes=i)).timestamp() * 1000),
        )
    p.flush(10)
    group = f"g-{unique}"
    c = consumer(settings, group)  # the group consumes everything, commits, and goes away
    c.subscribe([topic])
    seen = 0
    while seen < 40:
        seen += sum(1 for m in c.consume(100, 1.0) if m.error() is None)
    c.commit(asynchronous=False)
    c.close()
    assert wait_for_caught_up(settings, group, {(topic, 0): 20, (topic, 1): 20}, timeout_s=10)

    at = (base + timedelta(minutes=30)).isoformat()  # records 30..39: offsets 15..19 of each partition
    args = ["reset-offsets", "--group", group, "--topic", topic, "--to-datetime", at]
    dry = CliRunner().invoke(replay_cli, args, obj={})
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert _committed(settings, group, topic) == {0: 20, 1: 20}  # a dry run changes nothing
    done = CliRunner().invoke(replay_cli, [*args, "--execute"], obj={})
    assert done.exit_code == 0, done.output
    assert _committed(settings, group, topic) == {0: 15, 1: 15}

    # A group with an active member is refused.
    active = consumer(settings, group)
    active.subscribe([topic])
    try:
        while not active.assignment():
            active.poll(0.2)
        refused = CliRunner().invoke(replay_cli, [*args, "--execute"], obj={})
        assert isinstance(refused.exception, LivectxError) and "active member" in str(refused.exception)
    finally:
        active.close()


def _committed(settings, group: str, topic: str) -> dict[int, int]:  # type: ignore[no-untyped-def]
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])
    admin = admin_client(settings)
    result = admin.list_consumer_group_offsets([request])[group].result(10)
    return {tp.partition: tp.offset for tp in result.topic_partitions}
