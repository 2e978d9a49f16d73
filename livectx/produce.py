"""Write a repo generator's events to Kafka, paced or as fast as the broker takes them.

Generators are declared in the feature repo (:func:`livectx.repo.declare.generator`) and yield
``(source, record)``; each record is validated against its source's model before it is produced, so a
generator cannot put what the workers would dead-letter on the log. A source declared ``wire="confluent"``
is written in the Confluent wire format through the registry (:mod:`livectx.schemas.serializers`), which
must hold its declared schema (``livectx schemas apply``): that is checked before anything is produced."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from livectx import timebase, tracing
from livectx.errors import LivectxError, SchemaError
from livectx.events import Event
from livectx.kafka import producer as make_producer
from livectx.kafka import require_reachable
from livectx.settings import Settings


@dataclass(frozen=True)
class ProduceResult:
    count: int
    per_topic: dict[str, int]
    seconds: float
    first_event_time: datetime | None
    last_event_time: datetime | None


def produce_scenario(
    settings: Settings,
    scenario: str,
    *,
    count: int,
    seed: int,
    start: datetime | None = None,
    rate: float | None = None,
    speedup: float = 1.0,
    topic_map: dict[str, str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ProduceResult:
    """Produce ``count`` events of ``scenario`` and wait until the broker acknowledged all of them.

    Args:
        start: the first event's time. ``None``: with a rate, now (event time then follows the wall clock);
            without one, back-dated so the run's last event is now (:mod:`livectx.timebase`).
        rate: events per wall-clock second; ``None`` produces as fast as possible. Event time follows the
            scenario's own simulated rate (``rate`` over ``speedup``, or its default), so the timeline is
            the same either way.
        speedup: event time runs this many times faster than the clock (needs ``rate``); the run is
            back-dated so it never overtakes the clock, and recorded so outputs reporting ages say so.
        topic_map: rename topics (tests use unique names per test).
        on_warning: told once when event time runs over an hour ahead of the wall clock (produced faster than
            the generator's simulated rate): the sources' default ``max_ahead`` dead-letters such records, and
            Kafka (whose ``message.timestamp.after.max.ms`` is 1 h) would refuse them as timestamps.

    Raises:
        LivectxError: the broker is unreachable or rejected records (the first error is reported).
        SchemaNotRegistered: a source produces through the registry and its schema is not registered.
    """
    from livectx.repo import current_repo

    repo = current_repo(settings)
    repo.generator(scenario)  # an unknown name fails before anything is produced
    if speedup != 1 and not rate:
        raise LivectxError(f"--speedup {speedup:g} needs --rate: it compresses paced event time")
    event_rate = rate / speedup if rate else None  # K times fewer events per second of event time
    if start is None:
        if rate:
            start = timebase.compressed_start(count, rate, speedup)
        else:
            start = timebase.back_dated_start(lambda s: generated_events(repo, scenario, seed, s), count)
    events = generated_events(repo, scenario, seed, start, event_rate)
    from livectx.schemas.serializers import RegistryEncoder

    encoder = RegistryEncoder.from_settings(settings, repo.sources.values())
    encoder.check()  # a framed source's schema must be registered: one line, before anything is produced
    require_reachable(settings)
    producer = make_producer(settings)
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None and len(errors) < 5:
            errors.append(str(err))

    per_topic: Counter[str] = Counter()
    first = last = None
    began = time.monotonic()
    warned = False
    traced = tracing.STATE.enabled  # off: not even a call per record
    for n, (topic, event) in enumerate(itertools.islice(events, count), start=1):
        if not warned and on_warning is not None and event.event_time_ms > time.time() * 1000 + 3_600_000:
            warned = True
            on_warning(
                f"event time is now over an hour ahead of the clock ({event.event_time.isoformat()}): records "
                "that far ahead are dead-lettered by a source's default max_ahead; pass an earlier --start or a --rate"
            )
        produced_to = (topic_map or {}).get(topic, topic)
        key, value, headers = encoder.encode(event, produced_to)
        topic = produced_to
        if traced:
            headers = tracing.traced_headers(topic, headers)  # a send span, its traceparent in the headers
        _produce(producer, topic, key, value, headers, on_delivery)
        per_topic[topic] += 1
        first = first or event.event_time
        last = event.event_time
        if rate:
            ahead = began + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing to the requested rate, not synchronisation
        if n % 1000 == 0:
            producer.poll(0)  # serve delivery callbacks
            if on_progress is not None:
                on_progress(1000)
    remaining = producer.flush(60)
    if on_progress is not None:
        on_progress(count % 1000)
    if errors or remaining:
        raise LivectxError(f"{remaining} events not acknowledged by Kafka; first errors: {errors}")
    timebase.record(settings, speedup, first, last)
    return ProduceResult(count, dict(per_topic), time.monotonic() - began, first, last)


def generated_events(
    repo: Any, name: str, seed: int, start: datetime, rate: float | None = None, **options: Any
) -> Iterator[tuple[str, Event]]:
    """The repo generator ``name``'s ``(topic, event)`` pairs, each record validated as its source's event.

    Raises:
        LivectxError: no such generator, or a record it made does not match its source (named).
    """
    spec = repo.generator(name)
    records = spec.function(seed, start, rate, **options) if rate else spec.function(seed, start, **options)
    for source_name, record in records:
        source = repo.source(source_name)
        try:
            event = source.model.model_validate(record)
        except Exception as exc:
            raise SchemaError(f"generator {name} made a record source {source_name} rejects: {exc}") from None
        yield source.topic, event


def _produce(producer, topic, key, value, headers, on_delivery) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:  # local queue full: let librdkafka drain, then retry
            producer.poll(0.1)
