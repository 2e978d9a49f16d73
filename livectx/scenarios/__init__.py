"""Deterministic synthetic traffic: the same seed and start time give the same events, byte for byte.

A scenario is an infinite generator of ``(topic, event)`` pairs in event-time order. Event times advance
by ``1 / events_per_second`` of simulated time (with jitter from the seeded RNG), so a scenario can be
produced as fast as the broker takes it and still describe a realistic timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from livectx.errors import UnknownNameError
from livectx.events import Event

Scenario = Callable[[int, datetime, float], Iterator[tuple[str, Event]]]


def get_scenario(name: str) -> Scenario:
    from livectx.scenarios import fraud, shop, support

    scenarios: dict[str, Scenario] = {"fraud": fraud.generate, "support": support.generate, "shop": shop.generate}
    try:
        return scenarios[name]
    except KeyError:
        raise UnknownNameError(f"unknown scenario {name!r}; choose one of: {', '.join(scenarios)}") from None


SCENARIO_NAMES = ("fraud", "support", "shop")
