"""Fresh window state for views whose definition changed: replay, never a mix of old and new state.

At start the feature worker compares each view's fingerprint with the one its stored state was built by
(:mod:`livectx.repo.changes`). For every source topic with a changed view, before any partition is
assigned:

1. the online rows of the changed views are deleted for every entity their old state knew (an entity
   absent from the rebuilt history must not keep a value computed under the old window);
2. the window state of every view of that topic and the topic's stored offsets are dropped, so the engine
   replays the topic from the start of the log: the unchanged views of the topic are recomputed to the
   same values, and its offline copy is rewritten with them (the engine discards offline rows past a
   partition's committed offset, here all of them);
3. the new definitions are recorded.

Each step is idempotent: a crash anywhere leaves old fingerprints, and the next start does it again. The
whole topic is replayed because its views share one position per partition. If retention already deleted
the start of the log, the rebuilt windows start at the oldest record still there (logged as a warning):
rebuilding from the cold tier is not supported yet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from livectx.features.redis_layout import FeastRedisLayout
from livectx.features.spec import FeatureGroup
from livectx.repo.changes import changed_views, record_definitions, stored_definitions
from livectx_ingest.streaming.checkpoint import FIELD_SEP, RedisCheckpoints

log = logging.getLogger(__name__)


def prepare_rebuilds(
    settings: Any,
    consumer_group: str,
    declared: Sequence[FeatureGroup],
    running: Sequence[FeatureGroup],
    topic_map: Mapping[str, str],
    project: str,
) -> list[str]:
    """Before a worker starts: rebuild the views whose definition changed (see the module doc). ``declared``
    are the repo's views, ``running`` the same as the engine runs them (a re-keyed one reads its
    repartition topic), in the same order. Returns the rebuilt views' names."""
    from livectx.features.online_reader import feature_store_identity
    from livectx.kafka import admin_client
    from livectx.redis_client import redis_client
    from livectx.tier.hot import watermarks

    state_topics = {
        d.name: topic_map.get(r.source_topic, r.source_topic) for d, r in zip(declared, running, strict=True)
    }
    _project, eksv = feature_store_identity(settings.feature_repo)
    rebuilt = rebuild_changed_views(redis_client(settings), consumer_group, declared, state_topics, project, eksv)
    if not rebuilt:
        return rebuilt
    topics = sorted({state_topics[name] for name in rebuilt})
    rewind_kafka_offsets(admin_client(settings), consumer_group, topics)
    for (topic, partition), (low, _high) in sorted(watermarks(settings, topics).items()):
        if low > 0:
            log.warning(
                "rebuilding from %s[%d]: the log starts at offset %d (older records are only in the cold tier, "
                "which a rebuild does not read yet): rebuilt windows start there",
                topic,
                partition,
                low,
            )
    return rebuilt


def rebuild_changed_views(
    client: Any,
    consumer_group: str,
    groups: Sequence[FeatureGroup],
    state_topics: Mapping[str, str],
    project: str,
    entity_key_serialization_version: int = 3,
) -> list[str]:
    """Reset what the changed views' state needs (see the module doc); returns the changed views' names.

    Runs under a per-group Redis lock, so of two workers starting together one resets and the other then
    finds the new definitions recorded."""
    with client.lock(f"livectx:engine:{consumer_group}:rebuild-lock", timeout=300, blocking_timeout=600):
        return _rebuild(client, consumer_group, groups, state_topics, project, entity_key_serialization_version)


def _rebuild(
    client: Any,
    consumer_group: str,
    groups: Sequence[FeatureGroup],
    state_topics: Mapping[str, str],
    project: str,
    entity_key_serialization_version: int,
) -> list[str]:
    changed = changed_views(client, consumer_group, groups)
    if changed:
        stored = stored_definitions(client, consumer_group)
        checkpoints = RedisCheckpoints(client, consumer_group)
        topics = {state_topics[g.name] for g in changed}
        names = {g.name for g in changed}
        for topic in sorted(topics):
            entities = _drop_topic_state(client, checkpoints, topic, names)
            for group in changed:
                if state_topics[group.name] == topic:
                    _delete_rows(client, group, stored[group.name]["features"], entities.get(group.name, set()),
                                 project, entity_key_serialization_version)  # fmt: skip
            log.warning(
                "rebuilding %s: its definition changed; replaying %s from the start of the log",
                ", ".join(sorted(g.name for g in changed if state_topics[g.name] == topic)),
                topic,
            )
    record_definitions(client, consumer_group, groups)
    return sorted(g.name for g in changed)


def rewind_kafka_offsets(admin: Any, consumer_group: str, topics: Sequence[str]) -> None:
    """Set the group's Kafka offsets of ``topics`` (the mirror ``--until-caught-up`` and lag read) to 0, so a
    rebuild is not taken for caught up before it replays. The engine's own offsets live in Redis."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    metadata = admin.list_topics(timeout=10).topics
    partitions = [TopicPartition(t, p, 0) for t in topics if t in metadata for p in metadata[t].partitions]
    if not partitions:
        return
    try:
        for future in admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(consumer_group, partitions)]
        ).values():
            future.result(10)
    except Exception as exc:  # an active member of the group: its mirror commits correct this as it goes
        log.warning(
            "could not rewind %s's Kafka offsets for the rebuild (%s): lag reads stale until it catches up",
            consumer_group,
            exc,
        )


def _drop_topic_state(client: Any, checkpoints: RedisCheckpoints, topic: str, names: set[str]) -> dict[str, set[str]]:
    """Delete every state hash and stored offset of ``topic``; returns the entities of the ``names`` views."""
    entities: dict[str, set[str]] = {}
    for key in list(client.scan_iter(match=f"{checkpoints.prefix}:state:{topic}:*", count=1000)):
        for field, _state in client.hscan_iter(key, count=5_000):
            view, _, entity = _text(field).partition(FIELD_SEP)
            if view in names:
                entities.setdefault(view, set()).add(entity)
        client.delete(key)
    for key in list(client.scan_iter(match=f"{checkpoints.prefix}:epoch:{topic}:*", count=1000)):
        client.incr(key)  # fences out a worker still running the old definitions
    offsets_key = f"{checkpoints.prefix}:offsets"
    stale = [
        f for f in client.hkeys(offsets_key) if (f.decode() if isinstance(f, bytes) else f).rsplit(":", 1)[0] == topic
    ]
    if stale:
        client.hdel(offsets_key, *stale)
    return entities


def _delete_rows(
    client: Any, group: FeatureGroup, old_features: list[str], entities: set[str], project: str, eksv: int
) -> None:
    """HDEL the view's feature fields (old and new names), freshness columns and timestamp per entity."""
    from feast.infra.online_stores.helpers import _mmh3

    layout = FeastRedisLayout(project, group, eksv)
    fields = {*layout.fields.values(), *(_mmh3(f"{group.name}:{name}") for name in old_features), layout.ts_field}
    pipe = client.pipeline(transaction=False)
    for n, entity in enumerate(entities, start=1):
        pipe.hdel(layout.redis_key(entity), *fields)
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
