"""An online shop: click sessions and product reviews with text."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from livectx.clock import SimulatedClock
from livectx.repo.declare import generator

CLICKS, REVIEWS = "click", "review"  # the sources the records go to

PAGES = ("home", "search", "product", "cart", "checkout")
REVIEW_TEXT = {
    5: ("Excellent quality, exactly as described.", "Love it, would buy again."),
    4: ("Good value for the price.", "Works well, delivery was a bit slow."),
    3: ("It is okay, nothing special.", "Average quality, does the job."),
    2: ("Broke after a week of use.", "Smaller than expected and feels cheap."),
    1: ("Arrived damaged and support did not help.", "Completely useless, asking for a refund."),
}


@generator("shop", "An online shop: click sessions and product reviews with text.")
def generate(
    seed: int, start: datetime, events_per_second: float = 300.0, users: int = 3000, items: int = 500
) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    clock = SimulatedClock(rng, start, events_per_second)
    serial = 0
    while True:
        now = clock.tick()
        serial += 1
        user = f"u{rng.randint(0, users - 1):05d}"
        item = f"i{min(int(rng.paretovariate(1.2)) - 1, items - 1):04d}"  # a few items get most traffic
        if rng.random() < 0.03:
            rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 5))[0]
            yield (
                REVIEWS,
                dict(
                    event_time=now,
                    review_id=f"r{serial:09d}",
                    user_id=user,
                    item_id=item,
                    rating=rating,
                    text=rng.choice(REVIEW_TEXT[rating]),
                ),
            )
        else:
            yield (
                CLICKS,
                dict(
                    event_time=now,
                    click_id=f"k{serial:09d}",
                    user_id=user,
                    session_id=f"s{user}-{serial // 50}",
                    item_id=item,
                    page=rng.choice(PAGES),
                ),
            )
