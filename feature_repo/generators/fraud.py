"""Card payments and logins, with card-testing attacks mixed into normal traffic.

Normal users pay a handful of merchants from one or two home IPs, with log-normal amounts. A card-testing
attack takes one card and one merchant and fires a burst of tiny payments from many distinct IPs inside
a couple of minutes (the pattern the article's fraud agent missed). Attack payments carry
``is_fraud=True`` as ground truth for training and backtests. Account-takeover attempts show up as bursts
of failed logins from foreign IPs.

Attacks come every ``attack_every`` events by default, each spread over 30-120 s. A scenario that must
show every burst inside its run (the ``attack`` benchmark and demo) passes ``attacks``: the bursts' start
times in seconds of event time after ``start``, each burst ``burst_seconds`` long, so ground truth (which
payments are attacks, and when each burst began) is known before the run.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from livectx.clock import SimulatedClock
from livectx.repo.declare import generator

TRANSACTIONS, LOGINS = "transaction", "login"  # the sources the records go to
Record = dict[str, Any]

COUNTRIES = ("DE", "FR", "GB", "US", "NL", "ES", "IT", "PL")


@dataclass(frozen=True)
class _User:
    user_id: str
    cards: tuple[str, ...]
    ips: tuple[str, ...]
    country: str
    favourite_merchants: tuple[str, ...]
    spend_mu: float


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _population(rng: random.Random, users: int, merchants: int) -> list[_User]:
    merchant_ids = [f"m{n:04d}" for n in range(merchants)]
    return [
        _User(
            user_id=f"u{n:05d}",
            cards=tuple(f"c{n:05d}{k}" for k in range(rng.choice((1, 1, 2)))),
            ips=tuple(_ip(rng) for _ in range(rng.choice((1, 2)))),
            country=rng.choice(COUNTRIES),
            favourite_merchants=tuple(rng.sample(merchant_ids, 5)),
            spend_mu=rng.uniform(2.5, 4.5),
        )
        for n in range(users)
    ]


@generator("fraud", "Card payments and logins with card-testing attacks and account-takeover attempts.")
def generate(
    seed: int,
    start: datetime,
    events_per_second: float = 200.0,
    users: int = 2000,
    merchants: int = 300,
    attack_every: int = 1500,
    attacks: Sequence[float] | None = None,
    burst_seconds: tuple[float, float] = (30.0, 120.0),
) -> Iterator[tuple[str, Record]]:
    """Yield ``(source, record)`` in event-time order, forever.

    Args:
        attacks: when given, bursts start at these offsets (seconds of event time after ``start``) instead
            of every ``attack_every`` events; their payments' ``txn_id`` is ``t<burst>a<k>``.
        burst_seconds: the range a burst's length is drawn from.
    """
    rng = random.Random(seed)
    people = _population(rng, users, merchants)
    clock = SimulatedClock(rng, start, events_per_second)
    due = sorted(start + timedelta(seconds=s) for s in attacks) if attacks is not None else None
    scheduled: list[tuple[datetime, int, str, Record]] = []  # attack events, merged by event time
    serial = 0
    tiebreak = itertools.count()
    while True:
        now = clock.tick()
        serial += 1
        while scheduled and scheduled[0][0] <= now:
            _, _, topic, event = heapq.heappop(scheduled)
            yield topic, event
        if (due is None and serial % attack_every == 0) or (due and due[0] <= now):
            if due:
                due.pop(0)
            for event in _card_testing_burst(rng, people, clock, serial, burst_seconds):
                heapq.heappush(scheduled, (event["event_time"], next(tiebreak), TRANSACTIONS, event))
        user = rng.choice(people)
        if rng.random() < 0.2:
            yield LOGINS, _login(rng, user, now, serial)
        else:
            yield TRANSACTIONS, _payment(rng, user, now, serial)


def _payment(rng: random.Random, user: _User, now: datetime, serial: int) -> Record:
    return dict(
        event_time=now,
        txn_id=f"t{serial:09d}",
        user_id=user.user_id,
        card_id=rng.choice(user.cards),
        merchant_id=rng.choice(user.favourite_merchants) if rng.random() < 0.85 else f"m{rng.randint(0, 299):04d}",
        amount=round(rng.lognormvariate(user.spend_mu, 0.8), 2),
        currency="EUR",
        ip=rng.choice(user.ips),
        country=user.country,
    )


def _login(rng: random.Random, user: _User, now: datetime, serial: int) -> Record:
    takeover = rng.random() < 0.01
    return dict(
        event_time=now,
        login_id=f"l{serial:09d}",
        user_id=user.user_id,
        ip=_ip(rng) if takeover else rng.choice(user.ips),
        device_id=f"d-unknown-{rng.randint(0, 9)}" if takeover else f"d{user.user_id[1:]}",
        success=not takeover and rng.random() > 0.03,
    )


def _card_testing_burst(
    rng: random.Random, people: list[_User], clock: SimulatedClock, serial: int, seconds: tuple[float, float]
) -> list[Record]:
    victim = rng.choice(people)
    card = rng.choice(victim.cards)
    merchant = f"m{rng.randint(0, 299):04d}"
    size = rng.randint(20, 60)
    window_s = rng.uniform(*seconds)
    offsets = sorted(rng.uniform(0, window_s) for _ in range(size))
    return [
        dict(
            event_time=clock.at(offset),
            txn_id=f"t{serial:09d}a{k:03d}",
            user_id=victim.user_id,
            card_id=card,
            merchant_id=merchant,
            amount=round(rng.uniform(0.5, 5.0), 2),
            currency="EUR",
            ip=_ip(rng),
            country=rng.choice(COUNTRIES),
            is_fraud=True,
        )
        for k, offset in enumerate(offsets)
    ]
