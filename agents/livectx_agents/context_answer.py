"""What a ``get_context`` call answers: the :class:`Context`, shaped from the parts' raw results.

Kept apart from the client so that the answer's shape (declared defaults where a value is missing, ages
and newest event times per view, the vector index's lag) and what a call reports to Prometheus can be
read, and changed, without the concurrency and budget handling around them (:mod:`.context_budget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from livectx import prometheus as prom
from livectx.errors import LivectxError
from livectx.features.spec import FeatureGroup
from livectx.vectors.records import SearchHit
from livectx_agents.breaker import CircuitBreaker


class ContextUnavailable(LivectxError):
    """``strict=True`` and a part of the context could not be served within the budget."""


@dataclass
class Context:
    entities: list[str]
    #: entity -> feature -> value (declared default when the value is missing or the read degraded)
    features: dict[str, dict[str, Any]]
    similar: list[SearchHit]
    #: ``features``: entity -> group -> age in ms (now - newest event); ``newest_event_ms``: entity -> group
    #: -> that newest event time (epoch ms); ``vector_index``: lag and age
    freshness: dict[str, Any]
    degraded: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.degraded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record_metrics(context: Context, breakers: Mapping[str, CircuitBreaker]) -> None:
    """The call's latency, each part's, the parts left out by reason kind, and the breakers' states."""
    prom.CONTEXT_CALL.observe(context.elapsed_ms / 1000)
    for part, ms in context.timings_ms.items():
        prom.CONTEXT_PART.labels(part).observe(ms / 1000)
    for message in context.degraded:
        prom.CONTEXT_DEGRADED.labels(message.partition(":")[0], prom.degraded_reason(message)).inc()
    for part, breaker in breakers.items():
        prom.BREAKER_OPEN.labels(part).set(1 if breaker.state == "open" else 0)


def _shape_features(
    entities: list[str], groups: Sequence[FeatureGroup], raw: dict[str, list[Any]] | None, now_ms: float
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float | None]], dict[str, dict[str, int | None]]]:
    """Per entity: feature values (defaults where missing), and per view the age and time of its newest event."""
    features: dict[str, dict[str, Any]] = {}
    ages: dict[str, dict[str, float | None]] = {}
    newest_times: dict[str, dict[str, int | None]] = {}
    for i, entity in enumerate(entities):
        values: dict[str, Any] = {}
        entity_ages: dict[str, float | None] = {}
        entity_newest: dict[str, int | None] = {}
        for group in groups:
            group_name = group.name
            for feature in group.features:
                value = raw[feature.name][i] if raw is not None else None
                values[feature.name] = feature.default_value if value is None else value
            newest = raw[group.event_time_field][i] if raw is not None else None
            entity_ages[group_name] = None if newest is None else max(0.0, now_ms - newest)
            entity_newest[group_name] = newest
        features[entity] = values
        ages[entity] = entity_ages
        newest_times[entity] = entity_newest
    return features, ages, newest_times


def _index_freshness(status: dict[str, Any] | None, now_ms: float) -> dict[str, Any] | None:
    if status is None:
        return None
    newest, updated = status.get("newest_event_ms"), status.get("updated_ms")
    return {
        "lag_records": status.get("lag_records"),
        "newest_event_age_ms": None if newest is None else max(0.0, now_ms - newest),
        "status_age_ms": None if updated is None else max(0.0, now_ms - updated),
    }
