"""Synthetic events driven by a source's declared schema: traffic for a repo nobody has produced to yet.

``livectx init`` scaffolds a generator that calls :func:`synthetic_records`; any repo can use it for a
first end-to-end run before real producers exist. Values follow the columns' types and declared checks
(``ge``/``le``/``min_length``/``max_length``), keys come from a fixed pool so entities repeat (windows
fill up), text columns get sentences from a small vocabulary so similar texts really are similar, and the
same seed and start give the same records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from livectx.clock import SimulatedClock

TOPICS = ("delivery", "refund", "invoice", "password", "parcel", "payment", "account", "order", "app", "sign-in")
PROBLEMS = (
    "is late and nobody answers",
    "was charged twice",
    "does not work since the update",
    "arrived broken",
    "cannot be changed in the settings",
    "shows the wrong amount",
)


def synthetic_records(
    source: Any,
    seed: int,
    start: datetime,
    rate: float = 50.0,
    *,
    keys: int = 100,
    text_columns: Sequence[str] = (),
    choices: dict[str, Sequence[Any]] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(source_name, record)`` pairs for a ``KafkaSource`` built by :func:`~livectx.repo.declare.stream_source`
    (or plain Feast), forever, in event-time order.

    Args:
        keys: how many distinct values each ``*_id`` column takes (the Kafka key among them).
        text_columns: columns that get sentences (default: columns named ``text``, ``body``, ``title`` or
            ``subject``).
        choices: per column, the values to pick from (e.g. ``{"status": ["open", "closed"]}``).
    """
    from livectx.repo.compile import declared_key, source_name
    from livectx.repo.declare import source_columns

    name = source_name(source)
    columns = source_columns(source.kafka_options.message_format, name)
    checks = _checks(source)
    texts = set(text_columns) or {c.name for c in columns if c.name in ("text", "body", "title", "subject")}
    choices = dict(choices or {})
    key = declared_key(source)
    rng = random.Random(seed)
    clock = SimulatedClock(rng, start, rate)
    serial = 0
    while True:
        now = clock.tick()
        serial += 1
        record: dict[str, Any] = {}
        for column in columns:
            if column.name == source.timestamp_field:
                record[column.name] = now if column.type == "timestamp" else int(now.timestamp() * 1000)
            elif column.name in choices:
                record[column.name] = rng.choice(list(choices[column.name]))
            elif column.name in texts:
                record[column.name] = f"My {rng.choice(TOPICS)} {rng.choice(PROBLEMS)}."
            elif column.type == "string" and (column.name.endswith("_id") or column.name == key):
                prefix = column.name.removesuffix("_id")[:1] or "k"
                record[column.name] = f"{prefix}{rng.randrange(keys):05d}"
            else:
                record[column.name] = _value(rng, column, checks.get(column.name, {}), serial)
        yield name, record


def _value(rng: random.Random, column: Any, rules: dict[str, Any], serial: int) -> Any:
    if column.type == "bool":
        return rng.random() < 0.5
    if column.type in ("int", "float"):
        low = rules.get("ge", rules.get("gt", 0))
        high = rules.get("le", rules.get("lt", low + 500))
        if column.type == "int":
            low_i = int(low) + (1 if "gt" in rules and low == int(low) else 0)
            high_i = int(high) - (1 if "lt" in rules and high == int(high) else 0)
            return rng.randint(low_i, max(low_i, high_i))
        return round(rng.uniform(float(low), float(high)), 2)
    if column.type == "timestamp":
        return None if column.nullable else datetime.fromtimestamp(serial, tz=None).astimezone()
    size = max(rules.get("min_length", 1), min(rules.get("max_length", 8), 8))
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size))


def _checks(source: Any) -> dict[str, dict[str, Any]]:
    import json

    from livectx.repo.declare import PREFIX

    return json.loads((source.tags or {}).get(PREFIX + "checks", "{}"))
