"""``decision_service``: a ``FeatureService`` a model decides with, and what it scores.

The service says which source's events the model scores, their id and label fields, and the event fields
it reads beside the features; :mod:`livectx.repo.decisions` writes and reads those tags.
"""

from __future__ import annotations

from collections.abc import Sequence

from feast import FeatureService, FeatureView, KafkaSource

from livectx.repo.decisions import DEFAULT_ACTION, check_fields, decision_tags
from livectx.repo.declare_base import PREFIX, source_columns
from livectx.repo.schema import SchemaDeclarationError


def decision_service(
    name: str,
    features: Sequence[FeatureView],
    *,
    scores: KafkaSource,
    id_field: str,
    label: str | None = None,
    inputs: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    action: str = DEFAULT_ACTION,
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
) -> FeatureService:
    """A ``FeatureService`` a model decides with: it scores each event of ``scores`` from the services'
    features about the event's entity, then the event's own ``inputs``.

    Args:
        id_field: names the scored event (live agents' ``Decision.entity_id``).
        label: a boolean field of ``scores``: the ground truth backtests judge against (None: unlabelled).
        inputs: numeric fields of ``scores`` that follow the feature columns in the model's input.
        columns: the features a model reads, in input order (default: every feature of the service).
        action: the ``Decision.action`` live agents record for a positive decision (what shadows compare).
    """
    source = (scores.tags or {}).get(PREFIX + "source", scores.name)
    kinds = {c.name: c.type for c in source_columns(scores.kafka_options.message_format, source)}
    check_fields(name, source, kinds, id_field, label, tuple(inputs), SchemaDeclarationError)
    extra = decision_tags(source, id_field, label, tuple(inputs), action)
    if columns is not None:
        extra[PREFIX + "model_columns"] = ",".join(columns)
    return FeatureService(
        name=name, features=list(features), description=description, tags={**(tags or {}), **extra}, owner=owner
    )
