"""A model's input vector, built one way for training, backtests, shadows and live agents.

A decision's model (:class:`~livectx.repo.decisions.DecisionSpec`) reads its feature columns about the
scored event's entity, in the registered order, then the event's declared inputs. A feature the store
does not hold (degraded context, an entity never seen, a value past its TTL) reads as 0: what training
saw for an entity with no history. Sharing this function is what makes offline and online inputs equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def model_row(features: Mapping[str, Any], inputs: Sequence[Any], columns: Sequence[str]) -> list[float]:
    """``columns`` of ``features`` (missing or None = 0), then the event's ``inputs``, as floats."""
    return [*(float(features.get(name) or 0.0) for name in columns), *(float(v) for v in inputs)]


__all__ = ["model_row"]
