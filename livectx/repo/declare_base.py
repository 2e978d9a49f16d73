"""What every declaration helper shares: the tag prefix, a source's columns, and Feast objects built the
same way by :mod:`livectx.repo.declare_views` and :mod:`livectx.repo.cdc` alike."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

from feast import Entity, Field, StreamFeatureView
from feast.types import Int64, String

from livectx.repo.schema import columns_of

#: Every livectx tag on a Feast object starts with this, so Feast and its tools pass the tags through.
PREFIX = "livectx."


def feast_stream_view(**options: Any) -> StreamFeatureView:
    """Feast's ``StreamFeatureView``, without its "experimental" warning (livectx runs the view itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Stream feature views are experimental", RuntimeWarning)
        return StreamFeatureView(**options)


def entity_field(entity: Entity) -> Field:
    """The entity's join key as a field of a view's schema (``Int64`` or ``String``, as the entity says)."""
    from feast.value_type import ValueType

    return Field(name=entity.join_key, dtype=Int64 if entity.value_type == ValueType.INT64 else String)


def source_columns(fmt: Any, source: str) -> tuple[Any, ...]:
    """The columns of a source's message format (JSON or Avro); errors name ``source``."""
    return columns_of(fmt, source)[0]


def ms(value: timedelta) -> int:
    """A duration as whole milliseconds: how the tags carry every duration."""
    return int(value / timedelta(milliseconds=1))
