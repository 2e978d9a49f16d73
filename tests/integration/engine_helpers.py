"""Helpers for the streaming feature engine tests: deterministic input, worker processes, comparisons."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from livectx import serde
from livectx.features.recompute import recompute_online
from livectx.features.spec import FeatureGroup
from livectx.kafka import producer
from livectx.settings import Settings
from tests.example import FEATURE_GROUPS, TRANSACTIONS, Transaction, get_scenario

START = datetime(2026, 3, 10, tzinfo=UTC)
#: The payment views keyed like the topic (user_id); the re-keyed card view has tests of its own.
TXN_GROUPS: tuple[FeatureGroup, ...] = tuple(
    g for g in FEATURE_GROUPS if g.source_topic == TRANSACTIONS and not g.rekeyed
)


def scenario_transactions(prefix: str, count: int, seed: int = 5, rate: float = 50.0) -> list[Transaction]:
    """Fraud-scenario payments with user ids unique to the test."""
    events = itertools.islice(get_scenario("fraud")(seed, START, rate), count)
    return [e.model_copy(update={"user_id": f"{prefix}-{e.user_id}"}) for t, e in events if t == TRANSACTIONS]


def payment(user: str, at: datetime, n: int, amount: float = 10.0, ip: str = "10.0.0.1") -> Transaction:
    return Transaction(
        event_time=at,
        txn_id=f"{user}-x{n}",
        user_id=user,
        card_id=f"{user}-c",
        merchant_id="m1",
        amount=amount,
        currency="EUR",
        ip=ip,
        country="DE",
    )


def produce(settings: Settings, topic: str, records: Sequence[Transaction | bytes], key: bytes = b"poison") -> None:
    p = producer(settings)
    for record in records:
        if isinstance(record, bytes):
            p.produce(topic, key=key, value=record)
        else:
            k, v, h = serde.encode(record)
            p.produce(topic, key=k, value=v, headers=h)
    assert p.flush(60) == 0


def worker_command(
    group: str,
    topic: str,
    dlq: str,
    late: str,
    worker_id: str = "0",
    guarantee: str = "exactly-once",
    views: Sequence[FeatureGroup] = TXN_GROUPS,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "livectx",
        "ingest",
        "run",
        "features",
        "--groups",
        ",".join(g.name for g in views),
        "--group",
        group,
        "--worker-id",
        worker_id,
        "--source-topic",
        f"{TRANSACTIONS}={topic}",
        "--dead-letter-topic",
        dlq,
        "--late-topic",
        late,
        "--guarantee",
        guarantee,
        "--until-caught-up",
    ]


def start_worker(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def run_worker_to_completion(command: list[str], log: Path, timeout_s: float = 240) -> None:
    proc = start_worker(command, log)
    assert proc.wait(timeout_s) == 0, log.read_text()[-3000:]


def online_mismatches(  # type: ignore[no-untyped-def]
    feature_store, groups: Sequence[FeatureGroup], events: Sequence[Transaction], entities: Sequence[str] = ()
) -> list[str]:
    """Every (group, entity, feature) whose online value differs from the batch recomputation (of every
    entity, or of ``entities``)."""
    problems = []
    for group in groups:
        expected = recompute_online(group, events)
        users = sorted(entities or expected)
        refs = [f"{group.name}:{f.name}" for f in group.features] + [
            f"{group.name}:{group.window_end_field}",
            f"{group.name}:{group.event_time_field}",
        ]
        got = feature_store.get_online_features(
            features=refs, entity_rows=[{group.entity_key: u} for u in users], full_feature_names=True
        ).to_dict()
        for i, user in enumerate(users):
            row = expected[user]
            actual_end = got[f"{group.name}__{group.window_end_field}"][i]
            if actual_end != row.window_end_ms:
                problems.append(f"{group.name} {user}: window end {actual_end} != {row.window_end_ms}")
            if got[f"{group.name}__{group.event_time_field}"][i] != row.newest_event_ms:
                problems.append(f"{group.name} {user}: newest event time differs")
            for feature in group.features:
                actual, wanted = got[f"{group.name}__{feature.name}"][i], row.values[feature.name]
                if actual != wanted:
                    problems.append(f"{group.name} {user} {feature.name}: online {actual} != batch {wanted}")
    return problems


def late_user_story(user: str) -> tuple[list[Transaction], Transaction, Transaction]:
    """Payments for one user, then one late within grace and one beyond grace for the 5-minute window.

    Returns (in-order payments, within-grace event, beyond-grace event), produced in that order."""
    t = START + timedelta(minutes=10)  # after the scenario's traffic
    in_order = [
        payment(user, t + timedelta(minutes=4, seconds=50), 1),
        payment(user, t + timedelta(minutes=5, seconds=10), 2),
    ]
    within = payment(user, t + timedelta(minutes=4, seconds=55), 3)  # window [t, t+5m) ends 15 s after t+4:40
    in_order2 = payment(user, t + timedelta(minutes=6), 4)
    beyond = payment(user, t + timedelta(minutes=4, seconds=58), 5)  # t+5m <= t+6m - 30 s: too late
    return [*in_order, within, in_order2], within, beyond


def start_metrics_worker(settings: Settings, topic: str, dlq: str, group: str, worker_id: str, port: int, stop):  # type: ignore[no-untyped-def]
    """A feature worker in a thread of this process, serving ``/metrics`` on ``port`` until ``stop`` is set."""
    import threading

    from livectx_ingest.streaming.worker import run_features_worker

    worker = threading.Thread(
        target=run_features_worker,
        kwargs={
            "settings": settings, "groups": TXN_GROUPS, "consumer_group": group, "worker_id": worker_id,
            "topic_map": {TRANSACTIONS: topic}, "write_offline": False, "dead_letter_topic": dlq,
            "stop": stop, "metrics_port": port, "metrics_interval_s": 0.2,
        },
        daemon=True,
    )  # fmt: skip
    worker.start()
    return worker
