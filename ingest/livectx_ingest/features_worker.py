"""Wires the user-totals slice: Kafka consumer + dead letters + Feast push sink + batch worker."""

from __future__ import annotations

from collections.abc import Callable

from livectx.events import Transaction
from livectx.feast_store import open_feature_store
from livectx.kafka import consumer, producer, require_reachable
from livectx.settings import Settings
from livectx.topics import TRANSACTIONS
from livectx_ingest.batch_worker import BatchWorker, WorkerStats
from livectx_ingest.dead_letter import DeadLetterPublisher
from livectx_ingest.feast_sink import FeastPushSink
from livectx_ingest.user_totals import PUSH_SOURCE, UserTotalsProcessor, feast_reader

DEFAULT_GROUP = "livectx-features"


def build_features_worker(
    settings: Settings,
    *,
    topic: str = TRANSACTIONS,
    group_id: str = DEFAULT_GROUP,
    dead_letter_topic: str | None = None,
    batch_size: int = 1000,
    on_batch: Callable[[WorkerStats], None] | None = None,
) -> BatchWorker:
    require_reachable(settings)
    store = open_feature_store(settings)
    sink = FeastPushSink(store, PUSH_SOURCE)
    dead_letters = DeadLetterPublisher(
        producer(settings), dead_letter_topic or settings.kafka.dead_letter_topic, worker=f"features/{group_id}"
    )
    process = UserTotalsProcessor(read_online=feast_reader(store), write_online=sink.write)
    return BatchWorker(
        consumer(settings, group_id),
        [topic],
        Transaction,
        process,
        dead_letters,
        batch_size=batch_size,
        on_batch=on_batch,
    )
