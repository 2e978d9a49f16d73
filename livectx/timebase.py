"""How produced event time relates to the wall clock, and what outputs that report ages must say about it.

Three honest timelines, chosen by ``livectx produce``:

- with a rate, event time follows the wall clock: the first event is now, then ``rate`` events a second;
- without one, a run is back-dated so that its last event is now: never future-dated, so feature ages
  (now minus an event's time) are positive, and Kafka and a source's ``max_ahead`` accept every record;
- ``--speedup K`` (with a rate) compresses time: event time runs K times faster than the clock and is
  back-dated so it never overtakes it. Ages are then event-time ages, K times what the clock would show,
  so the run is recorded under the data dir and every command that reports ages prints :func:`note`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from livectx.settings import Settings

MARK = "event-time.json"


def back_dated_start(events: Callable[[datetime], Iterator[tuple[str, Any]]], count: int) -> datetime:
    """A start so that the ``count``-th event of ``events(start)`` lands now (or a moment before).

    The span is measured by a dry pass from a fixed anchor: generators' event-time gaps do not depend on
    ``start``, so the same seed gives the same span."""
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    last = anchor
    for _topic, event in itertools.islice(events(anchor), count):
        last = event.event_time
    now = datetime.now(UTC).replace(microsecond=0)
    return now - (last - anchor) - timedelta(seconds=1)


def compressed_start(count: int, rate: float, speedup: float) -> datetime:
    """The start of a run at ``rate`` events per clock second whose event time runs ``speedup`` times faster:
    back-dated by ``(speedup - 1) * duration`` so that event time meets the clock at the run's end."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=(speedup - 1) * count / rate)


def record(settings: Settings, speedup: float, first: datetime | None, last: datetime | None) -> None:
    """Remember (or, at speedup 1, forget) that the produced event time is compressed."""
    path = settings.data_dir / MARK
    if speedup == 1:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"speedup": speedup, "first": first and first.isoformat(), "last": last and last.isoformat()}
    path.write_text(json.dumps({**body, "recorded_at": time.time()}) + "\n")


def speedup(settings: Settings) -> float:
    """The speedup of the last produced run (1.0: real time)."""
    path: Path = settings.data_dir / MARK
    try:
        return float(json.loads(path.read_text())["speedup"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1.0


def note(settings: Settings) -> str | None:
    """One line for outputs that report ages, when the event time they are measured from is compressed."""
    k = speedup(settings)
    if k == 1:
        return None
    return f"event time is compressed {k:g}x (produced with --speedup {k:g}): ages are event-time ages"
