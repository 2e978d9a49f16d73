"""Feature declarations as Quix Streams aggregators."""

from __future__ import annotations

from typing import Any

from quixstreams.dataframe.windows import aggregations as agg

from livectx.features.spec import Feature, FeatureGroup

EVENT_MS = "__ts"


class DistinctCount(agg.Aggregator):
    """Distinct values of a column in the window. State is a sorted list (JSON-serialisable for RocksDB
    and the changelog); fine for the cardinalities per entity and window that features see."""

    def initialize(self) -> list[Any]:
        return []

    def agg(self, old: list[Any], new: Any, timestamp: int) -> list[Any]:
        value = new.get(self.column) if self.column is not None else new
        if value is None or value in old:
            return old
        return sorted([*old, value])

    def result(self, value: list[Any]) -> int:
        return len(value)


def where_column(feature: Feature) -> str:
    return f"__where__{feature.name}"


def aggregator_for(feature: Feature) -> agg.BaseAggregator:
    """The Quix aggregator computing ``feature`` (``where`` filters become a per-feature marker column)."""
    column = where_column(feature) if feature.where is not None else feature.column
    if feature.where is not None and feature.aggregation != "count":
        raise ValueError(f"{feature.name}: `where` is only supported with count")
    match feature.aggregation:
        case "count":
            return agg.Count(column)
        case "sum":
            return agg.Sum(column)
        case "mean":
            return agg.Mean(column)
        case "min":
            return agg.Min(column)
        case "max":
            return agg.Max(column)
        case "last":
            return agg.Latest(column)
        case "distinct_count":
            return DistinctCount(column)
    raise ValueError(feature.aggregation)


def aggregators_for(group: FeatureGroup) -> dict[str, agg.BaseAggregator]:
    """Every feature of the group, plus the newest event time in the window (freshness as data)."""
    return {**{f.name: aggregator_for(f) for f in group.features}, EVENT_MS: agg.Max(EVENT_MS)}


def prepare(group_features: tuple[Feature, ...], value: dict[str, Any]) -> dict[str, Any]:
    """Add the marker columns that ``where`` filters count."""
    for feature in group_features:
        if feature.where is not None:
            column, wanted = feature.where
            value[where_column(feature)] = 1 if value.get(column) == wanted else None
    return value
