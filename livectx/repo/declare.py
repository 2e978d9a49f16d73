"""livectx's small extension of Feast's vocabulary: typed helpers that build plain Feast objects.

A repo may use Feast's classes alone (``Entity``, ``KafkaSource``, ``StreamFeatureView`` with
``Aggregation``s, ``FeatureService``, a ``FeatureView`` with a vector field) and livectx runs it as is.
What Feast cannot say travels in the objects' ``tags`` under ``livectx.*`` keys, so ``feast apply``,
``feast plan`` and ``feast ui`` still see every object, and these helpers write those tags for you:

- :func:`stream_source`: a ``KafkaSource`` plus the topic's partitions and retention, the Kafka key, value
  checks, and how far an event time may be from the record's Kafka timestamp;
- :func:`stream_view`: a ``StreamFeatureView`` whose window may also be *sliding* (ending at each event),
  whose features may be ``last`` values or filtered (``where``), with a grace period of its own;
- :func:`memory_view`: a ``FeatureView`` with a vector field over a text source, plus which fields form the
  text, id, tenant, category and metadata, and what marks a delete;
- :func:`decision_service`: a ``FeatureService`` a model decides with: which source's events it scores,
  their id and label fields, and the event fields it reads beside the features
  (:mod:`livectx.repo.decisions`);
- :func:`generator`: a synthetic-traffic function ``livectx produce --generator NAME`` runs.

Every helper validates what it can at once (so ``feast apply`` fails with a message naming the view and
the field); :mod:`livectx.repo.compile` checks the rest, for plain-Feast repos too.

The helpers live in one module each (``declare_source``, ``declare_views``, ``declare_windows``,
``declare_service``, ``declare_generator``, and ``declare_base`` for what they share); this module is the
one repos import them from, and stays so.
"""

from __future__ import annotations

from livectx.repo.declare_base import PREFIX, entity_field, feast_stream_view, source_columns
from livectx.repo.declare_generator import GeneratorSpec, generator
from livectx.repo.declare_service import decision_service
from livectx.repo.declare_source import stream_source
from livectx.repo.declare_views import memory_view, stream_view
from livectx.repo.declare_windows import (
    FUNCTIONS,
    RESERVED_SUFFIXES,
    FeatureDecl,
    WindowDecl,
    agg,
    count,
    count_distinct,
    hopping,
    sliding,
    tumbling,
)

__all__ = [
    "FUNCTIONS",
    "PREFIX",
    "RESERVED_SUFFIXES",
    "FeatureDecl",
    "GeneratorSpec",
    "WindowDecl",
    "agg",
    "count",
    "count_distinct",
    "decision_service",
    "entity_field",
    "feast_stream_view",
    "generator",
    "hopping",
    "memory_view",
    "sliding",
    "source_columns",
    "stream_source",
    "stream_view",
    "tumbling",
]
