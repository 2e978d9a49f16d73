"""Support tickets with text, routed to departments; a few are later retracted (deletes).

Texts are composed from per-department phrase banks so that similar tickets really are semantically
similar (what the embedding pipeline and the ticket router rely on), while the seed keeps them stable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from livectx.clock import SimulatedClock
from livectx.repo.declare import generator

TICKETS = "support_ticket"  # the source the records go to

PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "billing": (
        ("Charged twice", "Refund not received", "Wrong invoice amount", "Subscription renewal charge"),
        (
            "I was charged twice for the same order and need one payment refunded.",
            "My refund was promised last week but it has not arrived on my card.",
            "The invoice shows a higher amount than the price at checkout.",
            "I cancelled my plan but the subscription renewed and charged my card.",
        ),
    ),
    "technical": (
        ("App crashes", "Cannot log in", "Page not loading", "Sync error"),
        (
            "The mobile app crashes every time I open the settings screen.",
            "I reset my password but the login page still says invalid credentials.",
            "The dashboard page keeps spinning and never loads my data.",
            "My data does not sync between the phone and the laptop, it shows an error.",
        ),
    ),
    "shipping": (
        ("Package late", "Wrong address", "Damaged parcel", "Tracking not updating"),
        (
            "My package was supposed to arrive three days ago and it is still not here.",
            "The parcel was sent to my old address, can you redirect the delivery?",
            "The box arrived crushed and the item inside is broken.",
            "The tracking number has shown the same status for a week.",
        ),
    ),
    "account": (
        ("Change email", "Delete my account", "Two-factor problem", "Update profile"),
        (
            "How do I change the email address on my account?",
            "Please delete my account and all personal data you hold.",
            "I lost my phone and cannot receive the two-factor authentication code.",
            "I cannot update my name and phone number in the profile settings.",
        ),
    ),
}
TAILS = ("", " Please help.", " This is urgent.", " Thanks in advance.", " Order number attached.")


@generator("support", "Support tickets with text, routed to departments; a few are later retracted.")
def generate(
    seed: int, start: datetime, events_per_second: float = 20.0, users: int = 500
) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    clock = SimulatedClock(rng, start, events_per_second)
    departments = sorted(PHRASES)
    serial = 0
    while True:
        now = clock.tick()
        serial += 1
        if serial > 10 and rng.random() < 0.02:  # retract an earlier ticket (spam, duplicate, GDPR)
            victim = rng.randint(1, serial - 1)
            yield (
                TICKETS,
                dict(event_time=now, ticket_id=f"tk{victim:08d}", user_id="system", subject="", text="", op="delete"),
            )
            continue
        department = rng.choice(departments)
        subjects, bodies = PHRASES[department]
        pick = rng.randrange(len(subjects))
        yield (
            TICKETS,
            dict(
                event_time=now,
                ticket_id=f"tk{serial:08d}",
                user_id=f"u{rng.randint(0, users - 1):05d}",
                subject=subjects[pick],
                text=bodies[pick] + rng.choice(TAILS),
                department=department,
            ),
        )
