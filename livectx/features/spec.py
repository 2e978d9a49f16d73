"""What a streaming feature is: source, entity, aggregation, window and grace.

A :class:`FeatureGroup` is the unit the engine runs and Feast serves: every feature of one source topic,
one entity key and one window definition, materialised as one Feast ``FeatureView`` (one Redis hash
field set per entity). Features are declared in :mod:`livectx.features.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from livectx.events import Event

Aggregation = Literal["count", "sum", "mean", "min", "max", "distinct_count", "last"]
WindowKind = Literal["tumbling", "hopping", "sliding"]
NUMERIC_RESULT: dict[Aggregation, Literal["int", "float"]] = {
    "count": "int",
    "distinct_count": "int",
    "sum": "float",
    "mean": "float",
    "min": "float",
    "max": "float",
    "last": "float",
}


@dataclass(frozen=True)
class Window:
    """An event-time window. ``grace`` is how late (behind the newest event of the same entity) an event
    may arrive and still update its window; later events go to the late-events topic."""

    kind: WindowKind
    size: timedelta
    grace: timedelta = timedelta(0)
    step: timedelta | None = None  # hopping only

    def __post_init__(self) -> None:
        if (self.kind == "hopping") != (self.step is not None):
            raise ValueError("a hopping window needs step; other windows must not set it")
        if self.step is not None and (self.step <= timedelta(0) or self.size % self.step):
            raise ValueError("hopping step must be positive and divide the window size")

    @property
    def size_ms(self) -> int:
        return int(self.size / timedelta(milliseconds=1))

    @property
    def grace_ms(self) -> int:
        return int(self.grace / timedelta(milliseconds=1))

    @property
    def step_ms(self) -> int | None:
        return None if self.step is None else int(self.step / timedelta(milliseconds=1))


@dataclass(frozen=True)
class Feature:
    """One aggregated value. ``column`` is the event field aggregated (``None`` for count);
    ``where`` keeps only events whose field equals the value (e.g. ``("success", False)``)."""

    name: str
    aggregation: Aggregation
    column: str | None = None
    where: tuple[str, object] | None = None
    description: str = ""
    #: What a reader uses when the value is missing or the online store cannot be read. ``None`` means the
    #: aggregation's natural empty value: 0 for counts (no events), ``None`` (unknown) otherwise.
    default: float | None = None
    #: The served type when the view declares one (a plain-Feast schema may say Float64 for a count).
    dtype: Literal["int", "float"] | None = None

    def __post_init__(self) -> None:
        if self.aggregation != "count" and self.column is None:
            raise ValueError(f"feature {self.name}: {self.aggregation} needs a column")

    @property
    def result_type(self) -> Literal["int", "float"]:
        return self.dtype or NUMERIC_RESULT[self.aggregation]

    @property
    def default_value(self) -> float | int | None:
        if self.default is not None:
            return self.default
        return 0 if self.aggregation in ("count", "distinct_count") else None


class FreshnessColumns:
    """The freshness columns of a view's online row, named after the view: freshness as data."""

    name: str  # (a field of the dataclasses using this)

    @property
    def event_time_field(self) -> str:
        return f"{self.name}__event_ms"

    @property
    def written_field(self) -> str:
        return f"{self.name}__written_ms"

    @property
    def window_end_field(self) -> str:
        return f"{self.name}__window_end_ms"

    @property
    def metadata_fields(self) -> tuple[str, str, str]:
        """The newest event's time, when the row was written, and the window end."""
        return self.event_time_field, self.written_field, self.window_end_field


@dataclass(frozen=True)
class FeatureGroup(FreshnessColumns):
    """Features sharing source, entity and window: one Feast view, one window operator in the engine."""

    name: str
    source_topic: str
    event_type: type[Event]
    entity: str  # Feast entity name, e.g. "user"
    entity_key: str  # event field holding the entity id, e.g. "customer_id" (also the Feast join key)
    window: Window
    features: tuple[Feature, ...]
    description: str = ""
    ttl: timedelta = field(default=timedelta(days=2))

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(names) != len(set(names)):
            raise ValueError(f"group {self.name}: duplicate feature names")
        fields = self.event_type.model_fields
        for f in self.features:
            for col in (f.column, f.where[0] if f.where else None):
                if col is not None and col not in fields:
                    raise ValueError(f"group {self.name}: {self.event_type.__name__} has no field {col!r}")
        if self.entity_key not in fields:
            raise ValueError(f"group {self.name}: {self.event_type.__name__} has no field {self.entity_key!r}")

    @property
    def rekeyed(self) -> bool:
        """Whether the source topic's key differs from the entity (the engine repartitions by entity)."""
        return self.entity_key != self.event_type.key_field
