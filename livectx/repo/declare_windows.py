"""The windows and features a :func:`~livectx.repo.declare_views.stream_view` aggregates, as plain values.

Apart from the helpers that build Feast objects because these need no Feast: a repo's feature list is data
(``count("n")``, ``agg("total", "sum", "amount")``) that the view helper checks against its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

#: Feast's aggregation functions, plus livectx's ``last`` (the newest event's value).
FUNCTIONS = ("count", "sum", "mean", "min", "max", "count_distinct", "last")
RESERVED_SUFFIXES = ("__event_ms", "__written_ms", "__window_end_ms")


@dataclass(frozen=True)
class WindowDecl:
    kind: Literal["tumbling", "hopping", "sliding"]
    size: timedelta
    step: timedelta | None = None
    grace: timedelta | None = None


def tumbling(size: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """Fixed, back-to-back windows (Feast: ``slide_interval`` equal to ``time_window``)."""
    return WindowDecl("tumbling", size, None, grace)


def hopping(size: timedelta, step: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """Overlapping windows of ``size`` starting every ``step`` (Feast: a smaller ``slide_interval``)."""
    return WindowDecl("hopping", size, step, grace)


def sliding(size: timedelta, *, grace: timedelta | None = None) -> WindowDecl:
    """The ``size`` up to each entity's newest event (livectx extension: Feast has no such window)."""
    return WindowDecl("sliding", size, None, grace)


@dataclass(frozen=True)
class FeatureDecl:
    name: str
    function: str
    column: str | None = None
    where: tuple[str, Any] | None = None
    description: str = ""
    default: float | None = None


def count(name: str, *, where: tuple[str, Any] | None = None, description: str = "") -> FeatureDecl:
    return FeatureDecl(name, "count", None, where, description)


def count_distinct(
    name: str, column: str, *, where: tuple[str, Any] | None = None, description: str = ""
) -> FeatureDecl:
    return FeatureDecl(name, "count_distinct", column, where, description)


def agg(
    name: str,
    function: str,
    column: str,
    *,
    where: tuple[str, Any] | None = None,
    description: str = "",
    default: float | None = None,
) -> FeatureDecl:
    """``sum``, ``mean``, ``min``, ``max`` or ``last`` of ``column``."""
    return FeatureDecl(name, function, column, where, description, default)
