"""The example repo the benchmarks measure (its fraud and support domain), through the public path.

Benchmarks are figures of the product on one concrete domain: they load the configured feature repo
(``--repo``/``LIVECTX_FEATURE_REPO``, by default the example) and generate its traffic with its own
generators, exactly as ``livectx produce`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from livectx.events import Event
from livectx.produce import generated_events
from livectx.repo import current_repo

#: The example repo's topics the benchmarks read.
TRANSACTIONS = "livectx.transactions"
LOGINS = "livectx.logins"
DOCUMENTS = "livectx.documents"


def repo() -> Any:
    return current_repo()


def events(
    generator: str, seed: int, start: datetime, rate: float, count: int | None = None, **options: Any
) -> Iterator[tuple[str, Event]]:
    """``(topic, event)`` pairs of one of the repo's generators (the first ``count``, or forever)."""
    stream = generated_events(current_repo(), generator, seed, start, rate, **options)
    return stream if count is None else itertools.islice(stream, count)


def model(topic: str) -> type[Event]:
    spec = current_repo().source_for_topic(topic)
    assert spec is not None, f"the feature repo has no source on {topic}"
    return spec.model
