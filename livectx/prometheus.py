"""The platform's Prometheus metrics: one set of names for every worker, agent and server, and ``/metrics``.

Names follow Prometheus conventions (base units in the name, ``_total`` for counters) and labels stay
low-cardinality: a consumer group, a view, a part, a reason *kind* (:func:`reason_kind` maps a free-text
dead-letter reason to a handful of kinds), never an entity or a record. Everything lives in the default
registry of ``prometheus_client``, so a process exposes them all with :func:`serve_metrics` (a worker) or
mounts :func:`asgi_app` (the HTTP servers).

The hot paths pay one pre-bound child call per batch, not a label lookup per event; a histogram of every
written row takes a checkpoint's rows in one :func:`observe_many`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

#: Event to online-visible: from a few ms (keeping up) to minutes (catching up).
FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

EVENTS = Counter("livectx_events_processed_total", "Events applied by a feature worker.", ["group"])
FRESHNESS = Histogram(
    "livectx_feature_freshness_seconds",
    "Per online row written: the time it became visible minus its newest event time.",
    ["view"],
    buckets=FRESHNESS_BUCKETS,
)
CHECKPOINT = Histogram(
    "livectx_checkpoint_duration_seconds",
    "Feature-engine checkpoints (side outputs, rows, state and offsets in one Redis transaction).",
    ["group"],
    buckets=FAST_BUCKETS,
)
CHECKPOINT_ROWS = Counter("livectx_checkpoint_rows_total", "Online rows written by checkpoints.", ["group"])
DEAD_LETTERS = Counter("livectx_dead_letters_total", "Records sent to the dead-letter topic.", ["worker", "reason"])
LATE_EVENTS = Counter("livectx_late_events_total", "Events too late for their window (late-events topic).", ["view"])
CONSUMER_LAG = Gauge(
    "livectx_consumer_lag_records", "Records behind the end of the log.", ["group", "topic", "partition"]
)
VECTOR_LAG = Gauge("livectx_vector_index_lag_records", "Records not yet searchable in the vector index.", ["index"])
EMBED_BATCH = Histogram(
    "livectx_embedding_batch_size",
    "Texts per embedding batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
EMBED_SECONDS = Histogram("livectx_embedding_batch_seconds", "Model time per embedding batch.", buckets=FAST_BUCKETS)
CONTEXT_PART = Histogram(
    "livectx_context_part_seconds", "Time of each part of get_context.", ["part"], buckets=FAST_BUCKETS
)
CONTEXT_CALL = Histogram("livectx_context_seconds", "Whole get_context calls.", buckets=FAST_BUCKETS)
CONTEXT_DEGRADED = Counter(
    "livectx_context_degraded_total", "Parts left out of a get_context answer.", ["part", "reason"]
)
BREAKER_OPEN = Gauge("livectx_circuit_breaker_open", "1 while a dependency's circuit breaker is open.", ["part"])
MODEL_IN_USE = Gauge("livectx_model_version_info", "The model version an agent decides with (value 1).",
                     ["agent", "model", "version"])  # fmt: skip

_KINDS = (
    (re.compile(r"^empty value|^tombstone"), "null_record"),
    (re.compile(r"^not JSON|^expected a JSON object|^not Avro|^invalid UTF-8"), "malformed"),
    (re.compile(r"^implausible event time"), "implausible_time"),
    (re.compile(r"finite number|non-finite|infinity|nan\b", re.IGNORECASE), "non_finite"),
    (re.compile(r"schema violation"), "schema_violation"),
    (re.compile(r"schema id|unknown schema|not registered", re.IGNORECASE), "unknown_schema"),
    (re.compile(r"^missing|^empty text|key"), "missing_field"),
)


def reason_kind(reason: str) -> str:
    """A dead-letter reason's kind, for a label: the reason itself names fields and values (unbounded)."""
    for pattern, kind in _KINDS:
        if pattern.search(reason):
            return kind
    return "other"


def degraded_reason(message: str) -> str:
    """The kind of a ``degraded`` entry of get_context (``"vectors: timed out after 40 ms"``)."""
    text = message.partition(": ")[2]
    if text.startswith("timed out") or "over its" in text:
        return "timeout"
    if text.startswith("circuit open"):
        return "circuit_open"
    return "error"


def serve_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """Expose ``/metrics`` on ``host:port`` from a background thread (0: no endpoint). Returns the server."""
    if port <= 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    log.info("metrics at http://%s:%d/metrics", host, server.server_port)
    return server


def asgi_app() -> Any:
    """``/metrics`` for an ASGI server (mounted by ``livectx serve`` and the MCP server's HTTP app)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app()


def observe_many(histogram: Any, values: Sequence[float] | np.ndarray) -> None:
    """``histogram.observe(v)`` for every ``v`` of ``values``, in one pass.

    ``prometheus_client`` observes one value per call: a lock and a scan of the bounds each, about a
    quarter of what a checkpoint spends per written row. Here numpy finds every value's bucket (the first
    bound at or above it, as ``observe`` does) and each bucket hit is incremented once by its count; the
    sum is added once. Where the client's histogram child is not laid out as in the versions this was
    written against (``_upper_bounds``, ``_buckets``, ``_sum``), it observes value by value."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in np.asarray(values, dtype=np.float64).tolist():
            histogram.observe(value)
        return
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return
    counts = np.bincount(np.searchsorted(np.asarray(bounds), array, side="left"), minlength=len(bounds))
    for bucket, count in zip(buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    total.inc(float(array.sum()))
