"""What the dashboard reads from the platform's stores: Kafka, the online store, the vector index, the
dead-letter topic and the model registry. Each read is one small function of the core's own clients, so
the dashboard shows exactly what ``livectx ingest lag``, ``features get``, ``memory status`` and ``models
list`` would print. Nothing here writes, joins a consumer group or commits an offset.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from livectx.settings import Settings

log = logging.getLogger(__name__)

#: Groups livectx's own readers use for a moment (offset probes, registry readers): not pipelines.
_PROBES = ("livectx-offset-probe", "livectx-models-reader", "livectx-ui-")


class PlatformReader:
    """Reads for the dashboard; remembers the previous end offsets to turn them into topic rates."""

    def __init__(
        self,
        settings: Settings,
        dead_letter_topic: str | None = None,
        models_topic: str | None = None,
        clock: Any = time.time,
    ) -> None:
        from livectx import topics
        from livectx.consuming import GroupLag
        from livectx.kafka import admin_client

        self.settings = settings
        self.dead_letter_topic = dead_letter_topic or settings.kafka.dead_letter_topic
        self.models_topic = models_topic or topics.MODELS
        self._admin = admin_client(settings)
        self._lag = GroupLag(settings)  # one offset reader per listed group, kept between refreshes
        self._clock = clock
        self._last_ends: tuple[float, dict[tuple[str, int], int]] | None = None
        self._embedder: Any = None

    # -- Kafka ------------------------------------------------------------------------------------------
    def pipelines(self, max_groups: int = 40) -> dict[str, Any]:
        """Topics (partitions, end offsets, records/s since the last call) and each group's lag."""
        from livectx.offsets import end_offsets

        metadata = self._admin.list_topics(timeout=5)
        names = sorted(t for t in metadata.topics if not t.startswith("__"))
        ends = end_offsets(self.settings, names)
        now = self._clock()
        rates: dict[str, float] = {}
        if self._last_ends is not None and now > self._last_ends[0]:
            for (topic, partition), end in ends.items():
                before = self._last_ends[1].get((topic, partition), end)
                rates[topic] = rates.get(topic, 0.0) + max(end - before, 0) / (now - self._last_ends[0])
        self._last_ends = (now, ends)
        topics = [
            {
                "topic": name,
                "partitions": len(metadata.topics[name].partitions),
                "end_offset": sum(e for (t, _), e in ends.items() if t == name),
                "records_per_s": rates.get(name),
            }
            for name in names
        ]
        listed = self._listed_groups(max_groups)
        self._lag.keep_only(g.group_id for g in listed)
        groups = [self._group(listing, ends) for listing in listed]
        return {"topics": topics, "groups": groups}

    def close(self) -> None:
        """Close the groups' offset readers (after the refresher stopped: they are used on its thread)."""
        self._lag.close()

    def _listed_groups(self, max_groups: int) -> list[Any]:
        """Consumer groups, those with live members first (a dev stack keeps many finished ones)."""
        listed = [g for g in self._admin.list_consumer_groups().result(10).valid if not g.group_id.startswith(_PROBES)]
        return sorted(listed, key=lambda g: (str(g.state).endswith("EMPTY"), g.group_id))[:max_groups]

    def _group(self, listing: Any, ends: dict[tuple[str, int], int]) -> dict[str, Any]:
        """One group's committed offsets (its reader kept between refreshes) against the end offsets already read."""
        group = listing.group_id
        try:
            offsets = self._lag.commits(group).read(ends)
            committed = [(t, p, c) for (t, p), c in offsets.items()]
        except Exception as exc:  # a group being deleted or rebalancing: shown without lag
            log.debug("offsets of %s not readable: %s", group, exc)
            committed = []
        rows = sorted((t, p, c, ends.get((t, p), c)) for t, p, c in committed)
        return {
            "group": group,
            "state": str(listing.state).rpartition(".")[2].lower(),
            "lag": sum(end - c for _t, _p, c, end in rows),
            "partitions": [{"topic": t, "partition": p, "committed": c, "end": e, "lag": e - c} for t, p, c, e in rows],
        }

    # -- vector index -----------------------------------------------------------------------------------
    def watermark(self) -> dict[str, Any]:
        """Per text partition: the searchable watermark, the log end and the records between them."""
        from livectx.offsets import end_offsets
        from livectx.redis_client import redis_client
        from livectx.vectors.watermark import IndexWatermark

        mark = IndexWatermark(redis_client(self.settings), self.settings.vector.index)
        positions = mark.positions()
        try:
            ends = end_offsets(self.settings, sorted({t for t, _ in positions}))
        except KeyError:  # a topic deleted since it was indexed
            ends = {}
        partitions = [
            {"topic": t, "partition": p, "searchable": pos, "end": ends.get((t, p)), "lag": ends.get((t, p), pos) - pos}
            for (t, p), pos in sorted(positions.items())
        ]
        return {"index": self.settings.vector.index, "partitions": partitions, "status": mark.status()}

    # -- dead letters -----------------------------------------------------------------------------------
    def dead_letters(self, per_partition: int = 50) -> dict[str, Any]:
        """The newest records of the dead-letter topic with their reason and origin, grouped by reason."""
        from confluent_kafka import TopicPartition

        from livectx import dead_letter as dl
        from livectx.kafka import consumer

        reader = consumer(self.settings, f"livectx-ui-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
        samples: list[dict[str, Any]] = []
        try:
            described = reader.list_topics(self.dead_letter_topic, timeout=5).topics.get(self.dead_letter_topic)
            if described is None or described.error is not None:
                return {"topic": self.dead_letter_topic, "by_reason": {}, "samples": [], "error": "no such topic"}
            assigned, pending = [], set()
            for p in described.partitions:
                low, high = reader.get_watermark_offsets(TopicPartition(self.dead_letter_topic, p), 5, cached=False)
                if high > low:
                    assigned.append(TopicPartition(self.dead_letter_topic, p, max(low, high - per_partition)))
                    pending.add(p)
            reader.assign(assigned)
            deadline = time.monotonic() + 5
            while pending and time.monotonic() < deadline:
                message = reader.poll(0.5)
                if message is None:
                    continue
                if message.error() is not None:  # the end of a partition (or a transient error)
                    pending.discard(message.partition())
                    continue
                samples.append(_sample(message, dl))
        finally:
            reader.close()
        samples.sort(key=lambda s: s["timestamp_ms"] or 0, reverse=True)
        by_reason: dict[str, int] = {}
        for s in samples:
            by_reason[s["kind"]] = by_reason.get(s["kind"], 0) + 1
        return {"topic": self.dead_letter_topic, "by_reason": by_reason, "samples": samples}

    # -- models -----------------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        """Every registered version and which one is active, from the compacted registry topic."""
        from livectx.models import snapshot

        state = snapshot(self.settings, self.models_topic)
        return {
            "topic": self.models_topic,
            "versions": [
                {
                    "name": v.name,
                    "version": v.version,
                    "feature_service": v.feature_service,
                    "registered_at": v.registered_at.isoformat(),
                    "metrics": v.metrics,
                    "active": state.active.get(v.name) == v,
                }
                for v in sorted(state.versions.values(), key=lambda v: (v.name, v.registered_at))
            ],
        }

    # -- entities ---------------------------------------------------------------------------------------
    def services(self) -> dict[str, Any]:
        from livectx.repo import current_repo

        repo = current_repo(self.settings)
        return {
            "feature_services": {s: repo.service_groups(s)[0].entity_key for s in repo.services},
            "memory_views": sorted(repo.memory),
        }

    def entity(self, service: str, entity_id: str, query: str | None = None, top_k: int = 5) -> dict[str, Any]:
        """One entity's online features through Feast (as ``livectx features get``), the age of each view's
        newest event, and with ``query`` the entity's most similar items (tenant = the entity)."""
        from livectx.errors import LivectxError
        from livectx.feast_store import open_feature_store
        from livectx.repo import current_repo

        repo = current_repo(self.settings)
        if service not in repo.services:
            raise LivectxError(f"unknown feature service {service!r}; the repo declares: {', '.join(repo.services)}")
        join_key = repo.service_groups(service)[0].entity_key
        store = open_feature_store(self.settings)
        values = store.get_online_features(
            features=store.get_feature_service(service), entity_rows=[{join_key: entity_id}]
        ).to_dict()
        now_ms = self._clock() * 1000
        features, ages = {}, {}
        for name, column in values.items():
            value = column[0]
            if name == join_key or name.endswith(("__written_ms", "__window_end_ms")):
                continue
            if name.endswith("__event_ms"):
                ages[name.removesuffix("__event_ms")] = None if value is None else (now_ms - value) / 1000
            else:
                features[name] = value
        similar = self._similar(entity_id, query, top_k) if query else []
        return {"service": service, "entity": entity_id, "features": features, "age_s": ages, "similar": similar}

    def _similar(self, entity_id: str, query: str, top_k: int) -> list[dict[str, Any]]:
        from livectx.vectors import VectorFilter, open_vector_store
        from livectx.vectors.embedder import Embedder

        if self._embedder is None:  # loads the model once, on the first search
            self._embedder = Embedder.from_settings(self.settings)
        store = open_vector_store(self.settings)
        try:
            hits = store.search(self._embedder.embed([query])[0], top_k=top_k, where=VectorFilter(tenant=entity_id))
        finally:
            store.close()
        return [{"id": h.id, "score": h.score, "text": h.text, "category": h.category, "event_ms": h.event_ms}
                for h in hits]  # fmt: skip


def _sample(message: Any, dl: Any) -> dict[str, Any]:
    from livectx.prometheus import reason_kind

    headers = {k: v.decode(errors="replace") for k, v in (message.headers() or []) if v is not None}
    reason = headers.get(dl.REASON, "")
    value = message.value() or b""
    _kind, timestamp = message.timestamp()
    return {
        "reason": reason,
        "kind": reason_kind(reason),
        "source": f"{headers.get(dl.SOURCE_TOPIC, '?')}[{headers.get(dl.SOURCE_PARTITION, '?')}]"
        f"@{headers.get(dl.SOURCE_OFFSET, '?')}",
        "worker": headers.get(dl.WORKER, ""),
        "key": (message.key() or b"").decode(errors="replace")[:80],
        "value": value[:300].decode(errors="replace") + ("…" if len(value) > 300 else ""),
        "timestamp_ms": timestamp if timestamp > 0 else None,
    }
