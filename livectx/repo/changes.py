"""What an edit of the repo changes for the engine's window state, and the definitions that state was built by.

The engine keeps each stream view's window state in Redis beside its offsets. State built under one
definition (window, aggregations, filters, grace, the columns' types) is meaningless under another, so
the engine records, per consumer group, each view's *fingerprint* (:func:`fingerprint`) and what it was
(:func:`describe`). ``livectx plan`` compares them with the repo; the engine, at start, rebuilds the
state of every changed view by replay instead of mixing old and new state (see
:mod:`livectx_ingest.streaming.rebuild`).

Key: ``livectx:engine:<group>:views`` (hash ``<view>`` -> JSON ``{"fingerprint", "definition", "topic",
"features"}``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livectx.features.spec import FeatureGroup


def definition(group: FeatureGroup) -> dict[str, Any]:
    """Everything the view's window state depends on (not its description or TTL)."""
    fields = group.event_type.model_fields
    columns = sorted({c for f in group.features for c in (f.column, f.where[0] if f.where else None) if c})
    w = group.window
    return {
        "topic": group.source_topic,
        "entity_key": group.entity_key,
        "window": {"kind": w.kind, "size_ms": w.size_ms, "step_ms": w.step_ms, "grace_ms": w.grace_ms},
        "features": [
            {
                "name": f.name,
                "aggregation": f.aggregation,
                "column": f.column,
                "where": list(f.where) if f.where else None,
                "type": f.result_type,
            }
            for f in group.features
        ],
        "columns": {c: str(fields[c].annotation) for c in [group.entity_key, *columns]},
    }


def fingerprint(group: FeatureGroup) -> str:
    return hashlib.sha256(json.dumps(definition(group), sort_keys=True).encode()).hexdigest()[:16]


def describe(d: dict[str, Any]) -> str:
    w = d["window"]
    size = f"{w['size_ms'] / 60_000:g}m"
    step = f"/{w['step_ms'] / 60_000:g}m" if w.get("step_ms") else ""
    return f"{w['kind']} {size}{step}, grace {w['grace_ms'] / 1000:g}s: " + ", ".join(
        f"{f['name']}={f['aggregation']}({f['column'] or ''})" for f in d["features"]
    )


def views_key(consumer_group: str) -> str:
    return f"livectx:engine:{consumer_group}:views"


def stored_definitions(client: Any, consumer_group: str) -> dict[str, dict[str, Any]]:
    raw = client.hgetall(views_key(consumer_group))
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def record_definitions(
    client: Any, consumer_group: str, groups: Sequence[FeatureGroup], state_topics: dict[str, str] | None = None
) -> None:
    """Remember what each view's state is built by (called once its state is consistent with it), and where
    that state lives (``state_topics``: view -> the topic its state and offsets are kept under). Views
    recorded on the same topics that this run no longer has are forgotten: their state went with the
    topic's, and if they come back they are new views, rebuilt."""
    if not groups:
        return
    state_topics = state_topics or {g.name: g.source_topic for g in groups}
    stored = stored_definitions(client, consumer_group)
    running = {g.name for g in groups}
    topics = {g.source_topic for g in groups}
    gone = [n for n, old in stored.items() if n not in running and old.get("topic") in topics]
    if gone:
        client.hdel(views_key(consumer_group), *gone)
    client.hset(
        views_key(consumer_group),
        mapping={
            g.name: json.dumps(
                {
                    "fingerprint": fingerprint(g),
                    "definition": definition(g),
                    "topic": g.source_topic,
                    "state_topic": state_topics[g.name],
                    "features": [f.name for f in g.features],
                }
            )
            for g in groups
        },
    )


@dataclass(frozen=True)
class ViewChange:
    view: str
    action: str  # "new" | "unchanged" | "rebuild" | "removed"
    detail: str = ""


def view_changes(client: Any, consumer_group: str, groups: Sequence[FeatureGroup]) -> list[ViewChange]:
    """Each declared view against the definition its stored state was built by."""
    stored = stored_definitions(client, consumer_group)
    started = {old.get("topic") for old in stored.values()}  # topics whose stored position is past the start
    out = []
    for group in groups:
        old = stored.get(group.name)
        if old is None and group.source_topic in started:
            out.append(
                ViewChange(
                    group.name,
                    "rebuild",
                    f"new on {group.source_topic}, whose views are running: the next run replays the topic",
                )
            )
        elif old is None:
            out.append(ViewChange(group.name, "new", "state built from the start of the log on the next run"))
        elif old["fingerprint"] == fingerprint(group):
            out.append(ViewChange(group.name, "unchanged"))
        else:
            out.append(
                ViewChange(
                    group.name,
                    "rebuild",
                    f"{describe(old['definition'])} -> {describe(definition(group))}; the next run replays "
                    f"{group.source_topic} to rebuild it",
                )
            )
    declared = {g.name for g in groups}
    out += [ViewChange(n, "removed", "its state and rows stay until deleted") for n in stored if n not in declared]
    return out


def changed_views(client: Any, consumer_group: str, groups: Sequence[FeatureGroup]) -> list[FeatureGroup]:
    """The views whose stored state was built by another definition."""
    by_name = {g.name: g for g in groups}
    return [by_name[c.view] for c in view_changes(client, consumer_group, groups) if c.action == "rebuild"]
