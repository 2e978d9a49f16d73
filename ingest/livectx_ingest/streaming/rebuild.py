"""Fresh window state for views whose definition changed: replay, never a mix of old and new state.

At start the feature worker compares each view's fingerprint with the one its stored state was built by
(:mod:`livectx.repo.changes`). For every source topic with a changed view, before any partition is
assigned:

1. the online rows of the changed views are deleted, as their old definition wrote them (its join key and
   features), for every entity their old state knew (an entity absent from the rebuilt history must not
   keep a value computed under the old window);
2. the window state of every view of that topic and the topic's stored offsets are dropped, so the engine
   replays the topic from the start of the log: the unchanged views of the topic are recomputed to the
   same values, and its offline copy is rewritten with them (the engine discards offline rows past a
   partition's committed offset, here all of them);
3. the group's Kafka offsets of the topic are rewound (or the start fails if other workers of the group
   are still running);
4. where retention already deleted the start of the log, the engine replays the deleted head from the
   cold tier (:mod:`.cold_replay`) and stores the log's start as its position, so the worker goes on from
   the log exactly there; then the new definitions are recorded.

A view added to a topic whose views are running counts as changed: its state must start where the topic
does.

Each step is idempotent: a crash anywhere leaves old fingerprints, and the next start does it again. The
whole topic is replayed because its views share one position per partition. Records in neither the log nor
the cold tier are logged as a warning: the rebuilt windows then start after them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from livectx.errors import LivectxError
from livectx.features.spec import FeatureGroup
from livectx.repo.changes import changed_views, record_definitions, stored_definitions
from livectx_ingest.streaming.checkpoint import FIELD_SEP, Checkpoints, checkpoints_for, text

log = logging.getLogger(__name__)


def prepare_rebuilds(
    settings: Any,
    consumer_group: str,
    declared: Sequence[FeatureGroup],
    running: Sequence[FeatureGroup],
    topic_map: Mapping[str, str],
    project: str,
    make_engine: Callable[[Any], Any],
) -> list[str]:
    """Before a worker starts: rebuild the views whose definition changed (see the module doc). ``declared``
    are the repo's views, ``running`` the same as the engine runs them (a re-keyed one reads its
    repartition topic), in the same order; ``make_engine(consumer)`` builds the worker's engine over another
    consumer (the cold-tier replay's). Returns the rebuilt views' names."""
    from livectx.features.online_reader import feature_store_identity
    from livectx.kafka import admin_client
    from livectx.redis_client import redis_client
    from livectx_ingest.streaming.cold_replay import replay_cold_head

    state_topics = {
        d.name: topic_map.get(r.source_topic, r.source_topic) for d, r in zip(declared, running, strict=True)
    }
    _project, eksv = feature_store_identity(settings.feature_repo)
    admin = admin_client(settings)
    rebuilt = rebuild_changed_views(
        redis_client(settings), consumer_group, declared, state_topics, project, eksv,
        rewind=lambda topics: rewind_kafka_offsets(admin, consumer_group, topics),
        replay_cold=lambda topics, keepalive: replay_cold_head(settings, topics, make_engine, keepalive),
    )  # fmt: skip
    return rebuilt


def rebuild_changed_views(
    client: Any,
    consumer_group: str,
    groups: Sequence[FeatureGroup],
    state_topics: Mapping[str, str],
    project: str,
    entity_key_serialization_version: int = 3,
    rewind: Callable[[list[str]], None] = lambda _topics: None,
    replay_cold: Callable[[list[str], Callable[[], Any]], Any] = lambda _topics, _keepalive: None,
) -> list[str]:
    """Reset what the changed views' state needs (see the module doc); returns the changed views' names.
    ``rewind(topics)`` resets the group's Kafka offsets of the replayed topics, then
    ``replay_cold(topics, keepalive)`` rebuilds their state from the cold tier's head (calling ``keepalive``
    as it goes, which keeps the lock), before the new definitions are recorded.

    Runs under a per-group Redis lock, so of two workers starting together one resets and the other then
    finds the new definitions recorded."""
    lock = client.lock(f"livectx:engine:{consumer_group}:rebuild-lock", timeout=300, blocking_timeout=600)
    with lock:
        changed = changed_views(client, consumer_group, groups)
        if changed:
            _reset(client, consumer_group, changed, state_topics, project, entity_key_serialization_version)
            topics = sorted({state_topics[g.name] for g in changed})
            rewind(topics)
            replay_cold(topics, lock.reacquire)
        record_definitions(client, consumer_group, groups, dict(state_topics))
        return sorted(g.name for g in changed)


def _reset(
    client: Any,
    consumer_group: str,
    changed: Sequence[FeatureGroup],
    state_topics: Mapping[str, str],
    project: str,
    eksv: int,
) -> None:
    """Delete the changed views' rows as their old definitions wrote them, then the state and offsets of every
    topic involved (old and new). Rows go first, while the old state still lists their entities."""
    stored = stored_definitions(client, consumer_group)
    checkpoints = checkpoints_for(client, consumer_group)
    topics = {state_topics[g.name] for g in changed}
    for group in changed:
        old = stored.get(group.name)
        if old is None:
            continue  # a new view: it has no rows yet
        old_topic = old.get("state_topic", old["topic"])
        topics.add(old_topic)
        entities = _entities(client, checkpoints, old_topic, group.name)
        _delete_rows(client, group.name, old["definition"]["entity_key"], old["features"], entities, project, eksv)
    for topic in sorted(topics):
        checkpoints.drop_topic(topic)
        log.warning(
            "rebuilding %s: the definition changed; replaying %s from the start of the log",
            ", ".join(sorted(g.name for g in changed if state_topics[g.name] == topic)) or "(moved views)",
            topic,
        )


def rewind_kafka_offsets(admin: Any, consumer_group: str, topics: Sequence[str]) -> None:
    """Set the group's Kafka offsets of ``topics`` (the mirror ``--until-caught-up`` and lag read) to 0, so a
    rebuild is not taken for caught up before it replays (the engine's own offsets live in Redis).

    Raises:
        LivectxError: the group still has active members after 20 s (other workers are running).
    """
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    metadata = admin.list_topics(timeout=10).topics
    partitions = [TopicPartition(t, p, 0) for t in topics if t in metadata for p in metadata[t].partitions]
    if not partitions:
        return
    # A member that just stopped stays in the group until its session expires (10 s, static membership):
    # retry for a while; past that, the group has live workers, and a rebuild beside them would mix state.
    deadline = time.monotonic() + 20
    while True:
        try:
            for future in admin.alter_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(consumer_group, partitions)]
            ).values():
                future.result(10)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise LivectxError(
                    f"cannot rebuild: consumer group {consumer_group} still has active members ({exc}); stop its "
                    "other workers, then start this one again"
                ) from None
            time.sleep(1)  # waiting out a stopped member's session, with a deadline


def _entities(client: Any, checkpoints: Checkpoints, topic: str, view: str) -> set[str]:
    """The entities ``view`` holds window state for under ``topic`` (every partition)."""
    entities = set()
    for key in checkpoints.state_keys(topic):
        for field, _state in client.hscan_iter(key, match=f"{view}{FIELD_SEP}*", count=5_000):
            entities.add(text(field).partition(FIELD_SEP)[2])
    return entities


def _delete_rows(
    client: Any, view: str, join_key: str, features: list[str], entities: set[str], project: str, eksv: int
) -> None:
    """HDEL the view's feature fields, freshness columns and timestamp, for each entity, under the join key
    the old definition wrote them with."""
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    columns = [*features, f"{view}__event_ms", f"{view}__written_ms", f"{view}__window_end_ms"]
    fields = [_mmh3(f"{view}:{name}") for name in columns] + [f"_ts:{view}".encode()]
    pipe = client.pipeline(transaction=False)
    for n, entity in enumerate(entities, start=1):
        key = _redis_key(project, EntityKey(join_keys=[join_key], entity_values=[Value(string_val=entity)]), eksv)
        pipe.hdel(key, *fields)
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()
