"""The vector store's data: what is stored per text, what a search returns, how a search is filtered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VectorRecord:
    """One embedded text and where it came from.

    ``id`` is derived from the source key (``<schema>:<key>``), so a replay or a retry overwrites the same
    vector instead of adding a second one. ``topic/partition/offset`` point back into the log.
    """

    id: str
    vector: np.ndarray
    text: str
    source: str
    tenant: str
    category: str | None
    event_ms: int
    topic: str
    partition: int
    offset: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float  # cosine similarity, 1.0 = same direction
    text: str
    source: str
    tenant: str
    category: str | None
    event_ms: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorFilter:
    """Metadata filter every backend supports: tenant, category (any of), source, event-time range."""

    tenant: str | None = None
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None  # exclusive
