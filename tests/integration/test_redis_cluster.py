"""The feature engine on a real local Redis Cluster (three masters, ``stack up --redis-cluster 3``):
exactly-once through kill -9s and with two workers, read back by Feast's ``redis_cluster`` online store."""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from livectx_ingest.streaming.checkpoint import FencedError, RolledBack, checkpoints_for
from livectx_ingest.streaming.cluster_checkpoint import ClusterCheckpoints
from livectx_ingest.streaming.online_writer import FeastRedisWriter, RowWrites

from livectx.features.incremental import WindowRow
from livectx.kafka import admin_client
from livectx.offsets import end_offsets, wait_for_caught_up
from livectx.settings import Settings
from livectx.stack.process import wait_until

from .engine_helpers import (
    TXN_GROUPS,
    online_mismatches,
    produce,
    scenario_transactions,
    worker_command,
)
from .kafka_helpers import create_topic
from .private_redis import PrivateRedis, private_redis


@pytest.fixture(scope="module")
def cluster(settings: Settings, stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:  # type: ignore[no-untyped-def]
    with private_redis(settings, tmp_path_factory.mktemp("redis-cluster"), port_offset=40, nodes=3) as found:
        yield found


@pytest.fixture(scope="module")
def cluster_store(cluster: PrivateRedis, feature_store):  # type: ignore[no-untyped-def]
    return cluster.feature_store()


def _topics(settings: Settings, unique: str, partitions: int) -> tuple[str, str, str]:
    return (
        create_topic(settings, f"test.{unique}.txn", partitions),
        create_topic(settings, f"test.{unique}.dlq"),
        create_topic(settings, f"test.{unique}.late"),
    )


@pytest.mark.timeout(600)
def test_five_kill_minus_nines_on_a_cluster_then_finish_equals_the_recomputation(
    settings: Settings,
    cluster: PrivateRedis,
    cluster_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """SIGKILLs mid-batch, before any write, after the rows but before state and offsets (the moment only a
    Cluster has), and after the commit: no loss, no double count, and Feast reads the rows from every shard."""
    topic, dlq, late = _topics(settings, unique, partitions=6)
    events = scenario_transactions(unique, 8000, seed=21)
    group = f"test-{unique}"
    command = [*worker_command(group, topic, dlq, late), "--max-batch", "150", "--commit-interval", "0.001"]
    command += ["--no-offline"]
    rng = random.Random(unique)
    crashes = ["rows-written:1", "before-commit:1", "after-commit:1", f"event:{rng.randint(50, 300)}", "rows-written:1"]
    chunk = len(events) // (len(crashes) + 1)
    log = tmp_path / "worker.log"
    for n, crash in enumerate(crashes):
        produce(settings, topic, events[n * chunk : (n + 1) * chunk])
        worker = subprocess.Popen(
            command, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            env={**cluster.worker_env, "LIVECTX_ENGINE_CRASH": crash},
        )  # fmt: skip
        assert worker.wait(120) == -signal.SIGKILL, (
            f"{crash}: the worker was not killed there\n{log.read_text()[-2000:]}"
        )
    produce(settings, topic, events[len(crashes) * chunk :])
    proc = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=cluster.worker_env)
    assert proc.wait(240) == 0, log.read_text()[-3000:]
    assert online_mismatches(cluster_store, TXN_GROUPS, events) == []
    # The rows really are spread over the shards, and each partition's state sits on one of them.
    client = cluster.client()
    per_node = [n.redis_connection.dbsize() for n in client.get_primaries()]
    assert len(per_node) == 3 and all(n > 0 for n in per_node), per_node
    keys = ClusterCheckpoints(client, group).state_keys(topic)
    assert len(keys) == 6 and all("{" in k for k in keys), keys


@pytest.mark.timeout(600)
def test_two_workers_on_a_cluster_equal_the_recomputation(
    settings: Settings,
    cluster: PrivateRedis,
    cluster_store,
    unique: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    topic, dlq, late = _topics(settings, unique, partitions=4)
    events = scenario_transactions(unique, 4000, seed=23)
    group = f"test-{unique}"
    logs = [tmp_path / f"w{n}.log" for n in range(2)]
    commands = [
        [c for c in worker_command(group, topic, dlq, late, str(n)) if c != "--until-caught-up"] for n in range(2)
    ]
    workers = [
        subprocess.Popen(c, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=cluster.worker_env)
        for c, log in zip(commands, logs, strict=True)
    ]
    try:
        admin = admin_client(settings)

        def both_hold_partitions() -> bool:
            try:
                members = admin.describe_consumer_groups([group])[group].result(10).members
            except Exception:  # the group does not exist until the first worker joins
                return False
            return len(members) == 2 and all(m.assignment.topic_partitions for m in members)

        assert wait_until(both_hold_partitions, 180), "the two workers did not share the partitions"
        produce(settings, topic, events)
        assert wait_for_caught_up(settings, group, end_offsets(settings, [topic]), timeout_s=180)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    for worker, log in zip(workers, logs, strict=True):
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert online_mismatches(cluster_store, TXN_GROUPS, events) == []


def _row(count: int) -> WindowRow:
    return WindowRow(0, 300_000, 1_000, {f.name: count for f in TXN_GROUPS[0].features})


def test_cluster_rows_never_move_back_and_a_fenced_or_rolled_back_commit_commits_no_state(
    cluster: PrivateRedis, unique: str
) -> None:
    """The commit's rules on the real Cluster: a row is written over an older offset only; a zombie (older
    epoch) is fenced; a store holding older offsets than we committed (it restarted) is a rollback. Neither
    commits state or offsets. (Their rows are written first, by design: a real zombie's row at an offset is
    the value its successor computes there; see cluster_checkpoint.)"""
    client = cluster.client()
    group, tp = f"test-{unique}", (f"t-{unique}", 0)
    checkpoints = checkpoints_for(client, group)
    assert isinstance(checkpoints, ClusterCheckpoints)
    writer = FeastRedisWriter(client, "livectx", TXN_GROUPS[0])
    field = writer.layout.fields[TXN_GROUPS[0].features[0].name]

    def commit(epoch: int, committed: int | None, target: int, count: int) -> None:
        rows = RowWrites(1)
        rows.add(writer, "u1", _row(count), target)
        checkpoints.commit({tp: epoch}, {tp: target}, {tp: committed}, {tp: {"v\x1fu1": b"%d" % count}}, rows)

    def stored() -> object:
        return writer.layout.decode(client.hget(writer.redis_key("u1"), field))

    (epoch,) = checkpoints.claim([tp]).values()
    commit(epoch, None, 10, 3)
    commit(epoch, 10, 20, 5)
    assert stored() == 5 and checkpoints.offsets([tp]) == {tp: 20}
    # An old row (a replay from an older offset) is skipped, while its partition still commits.
    commit(epoch, 20, 15, 4)
    assert stored() == 5
    (newer,) = checkpoints.claim([tp]).values()  # another worker takes over
    with pytest.raises(FencedError):
        commit(epoch, 15, 30, 9)
    assert checkpoints.offsets([tp]) == {tp: 15}
    assert [raw for _view, _entity, raw in checkpoints.state(tp)] == [b"4"]
    client.delete(f"livectx:engine:{group}:offset:{{{tp[0]}:0}}")  # as if the shard restarted without it
    with pytest.raises(RolledBack) as caught:
        commit(newer, 15, 40, 11)
    assert caught.value.partitions == [tp]
    assert checkpoints.offsets([tp]) == {tp: None}
