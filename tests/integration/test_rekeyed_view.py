"""A view keyed by a field other than its topic's key (``card_txn_1h`` over ``user_id``-keyed payments):
re-keyed through a repartition topic, exactly once end to end, through five ``kill -9``s at random points
of the repartitioner (a transaction open) and of the engine (mid-batch, around the Redis commit)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

from livectx import dead_letter
from livectx.settings import Settings
from tests.example import REPO

from .engine_helpers import online_mismatches, produce, run_worker_to_completion, scenario_transactions, worker_command
from .kafka_helpers import create_topic, read_all

CARD_VIEW = REPO.group("card_txn_1h")


def test_rekeyed_view_equals_the_recomputation_through_kill_minus_nine(
    settings: Settings, feature_store, unique: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    assert CARD_VIEW.rekeyed and CARD_VIEW.entity_key == "card_id"
    topic = create_topic(settings, f"test.{unique}.txn", partitions=3)
    dlq = create_topic(settings, f"test.{unique}.dlq")
    late = create_topic(settings, f"test.{unique}.late")
    events = [e.model_copy(update={"card_id": f"{unique}-{e.card_id}"}) for e in scenario_transactions(unique, 7_000)]
    group = f"test-{unique}"
    command = [*worker_command(group, topic, dlq, late, views=[CARD_VIEW]), "--max-batch", "150"]
    rng = random.Random(unique)
    points = [
        ("LIVECTX_REPARTITION_CRASH", f"produced:{rng.randint(20, 200)}"),
        ("LIVECTX_ENGINE_CRASH", "before-commit:1"),
    ]
    points += [
        rng.choice(
            [
                ("LIVECTX_REPARTITION_CRASH", f"produced:{rng.randint(20, 200)}"),
                ("LIVECTX_ENGINE_CRASH", f"event:{rng.randint(20, 200)}"),
                ("LIVECTX_ENGINE_CRASH", "before-commit:1"),
                ("LIVECTX_ENGINE_CRASH", "after-commit:1"),
            ]
        )
        for _ in range(3)
    ]
    chunk = len(events) // (len(points) + 1)
    produce(settings, topic, [b"{not json"], key=b"poison")  # dead-lettered by the repartitioner, once
    for n, (env, point) in enumerate(points):
        produce(settings, topic, events[n * chunk : (n + 1) * chunk])
        worker = subprocess.Popen(
            command,
            stdout=(tmp_path / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, env: point},
        )
        assert worker.wait(180) == -signal.SIGKILL, f"{env}={point}: the worker was not killed there"
    produce(settings, topic, events[len(points) * chunk :])
    run_worker_to_completion(command, tmp_path / "worker.log")

    assert online_mismatches(feature_store, [CARD_VIEW], events) == []
    letters = read_all(settings, dlq, expected=1)
    assert len(letters) == 1 and "not JSON" in dict(letters[0].headers())[dead_letter.REASON].decode()
