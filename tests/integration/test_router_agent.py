"""The router agent: killed between its side effect and its offset commit, it still notifies exactly once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from livectx_agents.example_router import CRASH_AFTER_NOTIFICATIONS
from livectx_ingest.embeddings.worker import EmbeddingWorker

from livectx import serde
from livectx.events import Decision
from livectx.kafka import producer
from livectx.settings import Settings
from livectx.vectors.pgvector_store import PgVectorStore
from tests import example
from tests.example import TEXT_SOURCES, SupportTicket, get_scenario

from .kafka_helpers import create_topic, read_all


def _tickets(prefix: str, count: int, seed: int, start: datetime) -> list[SupportTicket]:
    events = itertools.islice(get_scenario("support")(seed, start, 20.0), count)
    return [
        e.model_copy(update={"ticket_id": f"{prefix}-{e.ticket_id}"})
        for _topic, e in events
        if isinstance(e, SupportTicket) and e.op == "upsert"
    ]


def _produce(settings: Settings, topic: str, tickets: list[SupportTicket]) -> None:
    p = producer(settings)
    for ticket in tickets:
        key, value, headers = serde.encode(ticket)
        p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0


def test_router_killed_after_notifying_restarts_and_notifies_exactly_once(
    settings: Settings, stack, embedder, unique: str, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    index = f"test_router_{unique}"
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", index)
    isolated = Settings()
    history_topic = create_topic(isolated, f"test.{unique}.history", 3)
    new_topic = create_topic(isolated, f"test.{unique}.tickets", 3)
    decisions = create_topic(isolated, f"test.{unique}.decisions", 3)
    history = _tickets(f"{unique}-old", 300, seed=1, start=datetime(2026, 1, 1, tzinfo=UTC))
    fresh = _tickets(f"{unique}-new", 60, seed=2, start=datetime(2026, 2, 1, tzinfo=UTC))
    try:
        # The memory: past tickets, embedded and indexed by the real embedding worker.
        _produce(isolated, history_topic, history)
        EmbeddingWorker(
            isolated, consumer_group=f"test-{unique}-emb", sources=[TEXT_SOURCES[example.TICKETS]],
            topic_map={example.TICKETS: history_topic}, embedder=embedder,
        ).run(until_caught_up=True)  # fmt: skip
        _produce(isolated, new_topic, fresh)

        notifications = tmp_path / "notifications.jsonl"
        # This test is about routing and exactly-once, not latency (the context benchmarks measure that): a
        # budget no loaded CI machine misses keeps a slow search from sending a ticket to the fallback queue.
        command = [
            sys.executable, "-m", "livectx", "agents", "run", "router", "--group", f"test-{unique}-router",
            "--source-topic", new_topic, "--decisions-topic", decisions, "--notifications", str(notifications),
            "--budget-ms", "30000",
        ]  # fmt: skip
        env = {**os.environ, "LIVECTX_VECTOR_INDEX": index}
        log = tmp_path / "router.log"
        crashed = subprocess.run(
            command, env={**env, CRASH_AFTER_NOTIFICATIONS: "7"}, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        assert crashed.returncode == -9, log.read_text()[-3000:]  # killed right after its 7th notification
        assert len(notifications.read_text().splitlines()) == 7
        done = subprocess.run([*command, "--until-caught-up"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        assert done.returncode == 0, log.read_text()[-3000:]

        sent = [json.loads(line) for line in notifications.read_text().splitlines()]
        per_ticket = Counter(n["ticket_id"] for n in sent)
        assert per_ticket == Counter({t.ticket_id: 1 for t in fresh})  # exactly one notification per ticket

        decided = [serde.decode(Decision, m.value()) for m in read_all(isolated, decisions, expected=len(fresh))]
        assert Counter(d.entity_id for d in decided) == Counter({t.ticket_id: 1 for t in fresh})  # aborted ones hidden
        truth = {t.ticket_id: t.department for t in fresh}
        correct = sum(d.action == f"route:{truth[d.entity_id]}" for d in decided)
        assert correct / len(decided) >= 0.9, [(d.entity_id, d.action, truth[d.entity_id]) for d in decided]
        assert all(d.degraded == [] and d.reasons[0].startswith("neighbours:") for d in decided), [
            (d.entity_id, d.degraded, d.reasons) for d in decided if d.degraded or not d.reasons[0].startswith("n")
        ]
    finally:
        store = PgVectorStore.from_settings(isolated)
        store.drop()
        store.close()
