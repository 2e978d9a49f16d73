"""A group's features bound to their aggregation kinds and to the positions of their event fields.

:class:`FeaturePlan` is one feature: its kind (:mod:`~livectx.features.aggregations`) with the index of
its column and of its ``where`` field in the observations the engine passes (``values``). The kind's
functions are bound as attributes, so reading a row calls them with no extra frame. :class:`GroupPlan`
is what a :class:`~livectx.features.incremental.GroupState` needs of all its features, computed once."""

from __future__ import annotations

from typing import Any

from livectx.features.aggregations import Adder, kind_of
from livectx.features.spec import Feature


class FeaturePlan:
    """One feature's partial aggregate, positioned in the group's observation tuples."""

    def __init__(self, feature: Feature, columns: tuple[str, ...]) -> None:
        self.feature = feature
        self.kind = kind = kind_of(feature.aggregation)
        self.col = columns.index(feature.column) if feature.column is not None else None
        self.where = (columns.index(feature.where[0]), feature.where[1]) if feature.where else None
        self.empty = kind.empty
        self.result = kind.result
        self.over_states = kind.over_states
        self.dump = kind.dump
        self.load = kind.load

    def adder(self) -> Adder:
        """The per-event update of this feature's state: built once, called once per event."""
        if self.where is None:
            return self.kind.adder(self.col)
        return self.kind.where_adder(self.col, *self.where)

    def add(self, state: Any, ts: int, seq: int, values: tuple[Any, ...]) -> Any:
        """One event (a convenience: the engine uses :meth:`adder`)."""
        return self.adder()(state, ts, seq, values)

    def over_columns(self, series: list[list[Any]]) -> Any:
        """The result over a sliding window's columns ``[ts, seq, *columns]`` (sorted by ts, seq)."""
        if self.where is not None:
            col, wanted = self.where
            keep = [i for i, v in enumerate(series[2 + col]) if v == wanted]
            series = [[column[i] for i in keep] for column in series]
        return self.kind.over_columns(series[0] if self.col is None else series[2 + self.col])


class GroupPlan:
    """Every feature of a group, with what the per-event path reads prepared as plain lists."""

    def __init__(self, features: tuple[Feature, ...], columns: tuple[str, ...]) -> None:
        self.plans = [FeaturePlan(f, columns) for f in features]
        #: Per feature, in order: its name and its state's result (bound once: read per row).
        self.names = [f.name for f in features]
        self.results = [plan.result for plan in self.plans]
        self.adders = [plan.adder() for plan in self.plans]
        self.empties = [plan.empty for plan in self.plans]
        #: Whether bucket states are JSON as they are (no per-feature dump/load needed).
        self.plain_states = all(plan.kind.plain_state for plan in self.plans)
        #: Per feature, the observation index of its column (the latest-sightings state's keys).
        self.sighted = [plan.col for plan in self.plans]
