"""Builds the Quix Streams application for a set of feature groups.

Per source topic: decode with livectx's serde (bad records branch off to the dead-letter topic, inside
the same transaction as everything else), take event time from the event, then one window operator per
feature group whose updates go to :class:`FeatureGroupSink`. Events too late for every window they
belong to are copied to the late-events topic by the window's ``on_late`` callback.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.models.serializers import Deserializer

from livectx import dead_letter, serde
from livectx.errors import LivectxError, SchemaError
from livectx.events import Event
from livectx.features.recompute import fully_late
from livectx.features.spec import FeatureGroup
from livectx_ingest.streaming.aggregators import EVENT_MS, aggregators_for, prepare
from livectx_ingest.streaming.online_writer import FeastRedisWriter
from livectx_ingest.streaming.sink import FeatureGroupSink

log = logging.getLogger(__name__)
ERROR = "__error__"
RAW = "__raw__"
LATE_GROUP = "livectx.late.group"
LATE_WINDOW = "livectx.late.window"
LATE_BY_MS = "livectx.late.by_ms"


class EventDeserializer(Deserializer):
    """Decodes one event type; never raises, so bad records can be routed instead of crashing the app."""

    def __init__(self, event_type: type[Event]) -> None:
        super().__init__()
        self._event_type = event_type

    def __call__(self, value: bytes | None, ctx: Any) -> dict[str, Any]:
        try:
            event = serde.decode(self._event_type, value)
        except SchemaError as exc:
            return {ERROR: str(exc), RAW: value}
        decoded = event.model_dump(mode="json")
        decoded[EVENT_MS] = event.event_time_ms
        return decoded


def _event_time(value: Any, _headers: Any, timestamp: int, _type: Any) -> int:
    return value[EVENT_MS] if isinstance(value, dict) and EVENT_MS in value else timestamp


@dataclass
class LateEvents:
    """Copies events too late for every window they belong to to the late-events topic, once per event
    and group, with the group, the window and how late it was in headers. (At-least-once: after a crash
    the re-processed range may report an event twice; consumers key by source topic-partition-offset.)"""

    producer: Any
    topic: str
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _seen: set[tuple[str, str, int, int]] = field(default_factory=set)

    def callback(self, group: FeatureGroup) -> Callable[..., bool]:
        import json

        def on_late(
            value: Any,
            key: Any,
            timestamp_ms: int,
            late_by_ms: int,
            start: int,
            end: int,
            store_name: str,
            topic: str,
            partition: int,
            offset: int,
        ) -> bool:
            marker = (group.name, topic, partition, offset)
            if marker in self._seen or not fully_late(group, timestamp_ms, late_by_ms):
                return False  # reported already, or still counted in the event's later windows
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen.add(marker)
            self.counts[group.name] += 1
            payload = {k: v for k, v in value.items() if not k.startswith("__")}
            self.producer.produce(
                self.topic,
                key=key,
                value=json.dumps(payload).encode(),
                headers=[
                    (LATE_GROUP, group.name.encode()),
                    (LATE_WINDOW, f"{start}-{end}".encode()),
                    (LATE_BY_MS, str(late_by_ms).encode()),
                    (dead_letter.SOURCE_TOPIC, topic.encode()),
                    (dead_letter.SOURCE_PARTITION, str(partition).encode()),
                    (dead_letter.SOURCE_OFFSET, str(offset).encode()),
                ],
            )
            self.producer.poll(0)
            return False  # counted and routed: no log line per late event

        return on_late

    def flush(self) -> None:
        if self.producer.flush(30):
            raise LivectxError(f"late-events topic {self.topic} did not acknowledge its records")


def build_application(
    *,
    broker_config: dict[str, Any],
    consumer_group: str,
    groups: Sequence[FeatureGroup],
    redis_client: Any,
    feast_project: str,
    dead_letter_topic: str,
    late: LateEvents,
    state_dir: Path,
    offline_dir: Path | None,
    processing_guarantee: str = "exactly-once",
    commit_interval_s: float = 0.1,
    transactional_id: str | None = None,
    topic_map: dict[str, str] | None = None,
    on_written: Callable[..., None] | None = None,
) -> tuple[Application, list[str]]:
    """The Quix application and the source topics it reads."""
    for group in groups:
        if group.rekeyed:
            raise LivectxError(f"feature group {group.name}: re-keying by {group.entity_key} is not supported yet")
    bootstrap = broker_config["bootstrap.servers"]
    extra = {k: v for k, v in broker_config.items() if k != "bootstrap.servers"}
    producer_extra = dict(extra)
    if processing_guarantee == "exactly-once":
        # A stable id per worker fences a killed predecessor at once instead of waiting for its timeout.
        producer_extra["transactional.id"] = transactional_id or f"livectx-{consumer_group}"
        producer_extra["transaction.timeout.ms"] = 10_000
    app = Application(
        broker_address=bootstrap,
        consumer_group=consumer_group,
        auto_offset_reset="earliest",
        commit_interval=commit_interval_s,
        processing_guarantee=processing_guarantee,
        state_dir=str(state_dir),
        consumer_extra_config=dict(extra),
        producer_extra_config=producer_extra,
        loglevel="WARNING",
    )
    dlq = app.topic(dead_letter_topic, value_serializer="bytes", key_serializer="bytes")
    by_source: dict[str, list[FeatureGroup]] = defaultdict(list)
    for group in groups:
        by_source[group.source_topic].append(group)
    sources = []
    for source, members in by_source.items():
        name = (topic_map or {}).get(source, source)
        sources.append(name)
        topic = app.topic(
            name,
            value_deserializer=EventDeserializer(members[0].event_type),
            key_deserializer="str",
            timestamp_extractor=_event_time,
        )
        sdf = app.dataframe(topic)
        (
            sdf.filter(lambda v: ERROR in v)
            .set_headers(_dead_letter_headers(consumer_group))
            .apply(lambda v: v[RAW])
            .to_topic(dlq)
        )
        valid = sdf.filter(lambda v: ERROR not in v)
        for group in members:
            writer = FeastRedisWriter(redis_client, feast_project, group)
            sink = FeatureGroupSink(group, writer, offline_dir, on_written=on_written, before_commit=late.flush)
            features = group.features
            prepared = valid
            if any(f.where is not None for f in features):  # marker columns only where a filter needs them
                prepared = valid.apply(lambda v, features=features: prepare(features, dict(v)))
            _window(prepared, group, late).agg(**aggregators_for(group)).current().sink(sink)
    return app, sources


def _window(sdf: Any, group: FeatureGroup, late: LateEvents) -> Any:
    w = group.window
    common = {"grace_ms": w.grace_ms, "name": group.name, "on_late": late.callback(group)}
    if w.kind == "tumbling":
        return sdf.tumbling_window(w.size_ms, **common)
    if w.kind == "hopping":
        return sdf.hopping_window(w.size_ms, w.step_ms, **common)
    return sdf.sliding_window(w.size_ms, **common)


def _dead_letter_headers(worker: str) -> Callable[..., list[tuple[str, bytes]]]:
    from quixstreams import message_context

    def headers(value: dict[str, Any], _key: Any, _ts: int, existing: Any) -> list[tuple[str, bytes]]:
        ctx = message_context()
        return [
            *(existing or []),
            (dead_letter.REASON, value[ERROR].encode()),
            (dead_letter.SOURCE_TOPIC, ctx.topic.encode()),
            (dead_letter.SOURCE_PARTITION, str(ctx.partition).encode()),
            (dead_letter.SOURCE_OFFSET, str(ctx.offset).encode()),
            (dead_letter.WORKER, f"streaming-features/{worker}".encode()),
        ]

    return headers
