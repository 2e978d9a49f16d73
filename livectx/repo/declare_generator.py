"""``@generator``: mark a function of the repo as synthetic traffic ``livectx produce --generator`` runs.

Apart from the Feast helpers because a generator is plain Python: :mod:`livectx.produce` finds the marked
functions by their :class:`GeneratorSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    function: Callable[..., Any]
    description: str = ""


def generator(name: str, description: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark ``fn(seed, start, rate, **options)`` as a traffic generator of this repo. It yields
    ``(source_name, record)`` pairs in event-time order, each record a dict of the source's fields."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__livectx_generator__ = GeneratorSpec(name, fn, description or (fn.__doc__ or "").strip())  # type: ignore[attr-defined]
        return fn

    return mark
