"""A decision: what a model scores, declared on a feature service so that backtests need no domain code.

A model that agents and backtests score decides about one source's events (the *scored* source), reading
one feature service about the event's entity. Its input vector is the service's model columns (missing = 0),
then a few numeric fields of the event itself (the *inputs*), built by :func:`livectx.models.rows.model_row`.
The event's *id* field names the decision (a live agent's ``Decision.entity_id``), and an optional boolean
*label* field is the ground truth backtests judge against.

Declared with :func:`livectx.repo.declare.decision_service`, which writes ``livectx.decision.*`` tags on a
plain Feast ``FeatureService``; :func:`compile_decision` reads them (hand-written tags too) and checks them
against the scored source's schema, so a mistake fails ``feast apply`` naming the service and the field.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livectx.errors import LivectxError
from livectx.features.spec import FeatureGroup

TAG = "livectx.decision."
#: What a decision's tags are called (``livectx.decision.<name>``).
TAGS = ("source", "id", "label", "inputs", "action")
#: ``Decision.action`` of a positive decision when the declaration does not name one.
DEFAULT_ACTION = "flag"
_KINDS: dict[Any, str] = {bool: "bool", int: "int", float: "float", str: "string"}


@dataclass(frozen=True)
class DecisionSpec:
    """One declared decision, as backtests, shadows and trainers read it."""

    service: str
    source: str  # the scored source
    topic: str  # the scored source's topic
    entity_key: str  # the join key of every view of the service (a field of the scored source)
    id_field: str
    label: str | None
    inputs: tuple[str, ...]
    columns: tuple[str, ...]  # the service's model columns, in model-input order
    #: Every topic a replay needs: the sources feeding the service's views, and the scored source (sorted).
    topics: tuple[str, ...]
    #: ``Decision.action`` a live agent records for a positive decision (score >= threshold).
    action: str = DEFAULT_ACTION
    description: str = ""

    def input_values(self, event: Any) -> tuple[Any, ...]:
        """The event's inputs, in declared order (what follows the feature columns in a model row)."""
        return tuple(getattr(event, name) for name in self.inputs)


def decision_tags(source: str, id_field: str, label: str | None, inputs: Sequence[str], action: str) -> dict[str, str]:
    return {
        TAG + "source": source,
        TAG + "id": id_field,
        TAG + "label": label or "",
        TAG + "inputs": ",".join(inputs),
        TAG + "action": action,
    }


def check_fields(
    service: str,
    source: str,
    kinds: Mapping[str, str],
    id_field: str,
    label: str | None,
    inputs: Sequence[str],
    error: type[LivectxError],
) -> None:
    """Raise ``error`` naming the service and the field unless the fields fit the scored source.

    ``kinds`` maps each field of the source to ``bool``, ``int``, ``float``, ``string`` or anything else.
    """
    for name in (id_field, label, *inputs):
        if name is not None and name not in kinds:
            raise error(f"feature service {service}: decision field {name!r} is not a field of source {source}")
    if label is not None and kinds[label] not in ("bool", "int"):
        raise error(
            f"feature service {service}: decision label {label!r} is a {kinds[label]} field of source {source}, "
            "not a boolean (or 0/1 integer)"
        )
    for name in inputs:
        if kinds[name] not in ("int", "float"):
            raise error(
                f"feature service {service}: decision input {name!r} is a {kinds[name]} field of source {source}, "
                "not a number"
            )
    if len(set(inputs)) != len(inputs) or id_field in inputs or (label is not None and label in inputs):
        raise error(f"feature service {service}: decision inputs {list(inputs)} repeat a field, the id or the label")


def compile_decision(
    service: Any,
    model_columns: Sequence[str],
    sources: Mapping[str, Any],
    groups: Sequence[FeatureGroup],
    error: type[LivectxError],
) -> DecisionSpec | None:
    """The decision a Feast ``FeatureService`` declares (None when it has no ``livectx.decision.*`` tags).

    Args:
        model_columns: the service's declared model columns (empty: every feature it serves).
        sources: the repo's compiled sources by name (:class:`~livectx.repo.sources.SourceSpec`).
        groups: the service's feature groups, in declaration order.
    """
    tags = service.tags or {}
    if not any(k.startswith(TAG) for k in tags):
        return None
    name = service.name
    unknown = sorted(k for k in tags if k.startswith(TAG) and k[len(TAG) :] not in TAGS)
    if unknown:
        raise error(f"feature service {name}: unknown decision tag {unknown[0]} (known: {', '.join(TAGS)})")
    source_name, id_field = tags.get(TAG + "source", ""), tags.get(TAG + "id", "")
    if not source_name or not id_field:
        raise error(f"feature service {name}: a decision names its scored source and id ({TAG}source, {TAG}id)")
    if source_name not in sources:
        raise error(
            f"feature service {name}: decision source {source_name!r} is not a source of the repo "
            f"(declared: {', '.join(sorted(sources)) or 'none'})"
        )
    source = sources[source_name]
    label = tags.get(TAG + "label") or None
    inputs = tuple(i.strip() for i in tags.get(TAG + "inputs", "").split(",") if i.strip())
    fields = source.model.model_fields
    check_fields(name, source_name, {f: _kind(info.annotation) for f, info in fields.items()}, id_field, label,
                 inputs, error)  # fmt: skip
    keys = {g.entity_key for g in groups}
    if len(keys) != 1 or next(iter(keys)) not in fields:
        raise error(
            f"feature service {name}: a decision's views share one entity key that is a field of source "
            f"{source_name}; they are keyed by {sorted(keys) or 'nothing'}"
        )
    served = [f.name for g in groups for f in g.features]
    columns = tuple(model_columns) or tuple(served)
    missing = [c for c in columns if c not in served]
    if missing:
        raise error(f"feature service {name}: model columns {', '.join(missing)} are not features it serves")
    return DecisionSpec(
        service=name,
        source=source_name,
        topic=source.topic,
        entity_key=keys.pop(),
        id_field=id_field,
        label=label,
        inputs=inputs,
        columns=columns,
        topics=tuple(sorted({g.source_topic for g in groups} | {source.topic})),
        action=tags.get(TAG + "action") or DEFAULT_ACTION,
        description=service.description or "",
    )


def _kind(annotation: Any) -> str:
    """``bool``/``int``/``float``/``string`` for an event model field's annotation (optional or not)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if len(args) == 1 else annotation
    return _KINDS.get(base, getattr(base, "__name__", str(base)))


__all__ = ["DecisionSpec", "check_fields", "compile_decision", "decision_tags"]
