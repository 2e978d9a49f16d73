"""The processes of ``livectx bench quota`` beside the feature engine: the live feed, the fraud agent and
the research team's replay.

Each is its own (spawned) process, as each is in production: a feeder thread in the engine's process
would compete with it for the GIL and add its own delay to every event's age, and the replay must load
the broker, not the engine's interpreter. Every process builds its settings from the environment, which
names the secured stack (the platform's workers authenticate as its super-user, the replay as the
research tenant's principal).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from livectx.kafka import consumer, producer
from livectx.settings import get_settings
from livectx.topics import MODELS
from livectx_benchmarks.pacing import Pacer

#: How the replay reports its progress to the bench: bytes received, records read, passes over the log.
REPLAY_BYTES, REPLAY_RECORDS, REPLAY_PASSES = 0, 1, 2


def feed(topic: str, rate: float, tag: str, stop: Any, sent: Any) -> None:
    """Live payments stamped with the wall clock at ``rate`` until ``stop`` is set; ``sent`` counts them.

    The payments are :func:`livectx_benchmarks.features._send`'s (500 users, the example's model), the
    events whose age ``bench features`` measures its freshness on.
    """
    from livectx_benchmarks.features import _send

    p = producer(get_settings())
    _send(p, topic, f"{tag}-warm", 0)  # loads the repo and connects: the paced sends start after
    p.flush(30)
    pacer = Pacer(p, rate, poll_every=100, sent=sent)
    n = 0
    while not stop.is_set():
        n += 1
        _send(p, topic, f"{tag}-u{n % 500}", n)
        pacer.sent_one(n)
    p.flush(30)
    sent.value = n


def agent(
    topic: str,
    decisions_topic: str,
    group: str,
    ready: Any,
    results: Any,
    model_name: str | None = None,
    models_topic: str = MODELS,
) -> None:
    """The fraud agent as ``livectx agents run fraud`` runs it (the rules, or the registered ``model_name``'s
    active version on ``models_topic``; its transactional loop, stopped by SIGTERM), with its ``decide``
    timed: per decision (wall-clock end, decide ms, event-to-decision ms, why its context was degraded:
    ``timeout``, ``circuit_open``, ``error`` or ``""``), put on ``results`` when it stops."""
    from livectx_agents.example_fraud import open_fraud_agent, run_fraud_loop

    from livectx.prometheus import degraded_reason

    settings = get_settings()
    fraud, close = open_fraud_agent(
        settings, decisions_topic=decisions_topic, model_name=model_name, models_topic=models_topic
    )
    samples: list[tuple[float, float, float, str]] = []
    decide_many = fraud.decide_many

    def timed(txns: Any, sources: Any) -> Any:
        began = time.perf_counter()
        decisions = decide_many(txns, sources)
        ended = time.time()
        took_ms = (time.perf_counter() - began) * 1000  # each decision of a batch is ready when the batch is
        for txn, decision in zip(txns, decisions, strict=True):
            degraded = degraded_reason(decision.degraded[0]) if decision.degraded else ""
            samples.append((ended, took_ms, ended * 1000 - txn.event_time.timestamp() * 1000, degraded))
        ready.set()
        return decisions

    fraud.decide_many = timed  # type: ignore[method-assign]
    run_fraud_loop(settings, fraud, close, consumer_group=group, worker_id="0", source_topic=topic,
                   until_caught_up=False)  # fmt: skip
    results.put(samples)


def replay(topic: str, group: str, secrets: Path, principal: str, counters: Any, stop: Any, ready: Any) -> None:
    """The research team: reads the whole topic as fast as the broker lets it, as its own principal,
    starting over at the beginning of each partition it reaches the end of, until ``stop`` is set.

    ``counters`` get the bytes received from the broker (librdkafka's ``rxbytes``, what a consumer byte
    rate quota counts, after lz4), the records read and the passes made.
    """
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    from livectx import tenancy

    password = tenancy.principal_password(secrets, principal)

    def on_stats(raw: str) -> None:
        brokers = json.loads(raw).get("brokers", {}).values()
        counters[REPLAY_BYTES] = float(sum(b.get("rxbytes", 0) for b in brokers))

    reader = consumer(
        get_settings(), group, **{"sasl.username": principal, "sasl.password": password,
                                  "enable.partition.eof": True, "statistics.interval.ms": 500, "stats_cb": on_stats},
    )  # fmt: skip
    partitions = reader.list_topics(topic, timeout=30).topics[topic].partitions
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records = passes = 0
    try:
        while not stop.is_set():
            for message in reader.consume(10_000, 0.2):
                error = message.error()
                if error is None:
                    records += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    reader.seek(TopicPartition(topic, message.partition(), OFFSET_BEGINNING))
                    passes += 1
                elif error.fatal():
                    raise RuntimeError(f"the research replay failed: {error}")
            counters[REPLAY_RECORDS] = float(records)
            counters[REPLAY_PASSES] = float(passes) / max(1, len(partitions))
            if records:
                ready.set()
    finally:
        reader.close()
