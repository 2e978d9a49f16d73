"""Training/serving skew: do the online values equal the offline recomputation from raw events?

For a sample of entities (drawn deterministically from the raw events, so each one can be recomputed), the
online row of every group of a feature service is read (the fast read path, Feast's Redis layout) and the
same values are recomputed from the raw events with :mod:`livectx.features.pit_sql` **as of the online
row's own newest event time** (``<group>__event_ms``). Why that instant and not the wall clock: "as of now"
would compare a value the engine wrote minutes ago against events it has not consumed yet, or against a
TTL that has since expired, so a healthy but lagging pipeline would report noise. As of the row's own
event time, a correct engine matches exactly, whatever its lag, and every mismatch is real skew.

Checked per (entity, group):

- ``value``: a feature, the window end or the newest event time differs.
- ``missing``: the raw events hold events of the group for the entity within the group's TTL of ``now_ms``,
  but the online store has no row (older rows may have expired, as Feast's TTL intends).
- skipped, not a mismatch: the online row is newer than the newest raw event (the archive is behind).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from livectx.features import pit_sql
from livectx.features.online_reader import OnlineFeatureReader
from livectx.features.spec import FeatureGroup


@dataclass(frozen=True)
class Mismatch:
    entity: str
    group: str
    feature: str
    online: Any
    offline: Any
    as_of_ms: int | None
    kind: str = "value"


@dataclass
class SkewReport:
    service: str
    entities: int
    checked: int = 0  # (entity, group) pairs compared
    skipped_source_behind: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mismatches": [asdict(m) for m in self.mismatches]}


def sample_entities(
    con: Any, groups: Sequence[FeatureGroup], sources: Mapping[str, pit_sql.EventSource], sample: int, seed: int
) -> list[str]:
    """Up to ``sample`` entity ids having raw events of the service, the same ones for the same seed."""
    key = pit_sql.ident(groups[0].entity_key)
    relations = sorted({sources[g.source_topic].relation for g in groups if g.source_topic in sources})
    union = " UNION ".join(
        f"SELECT DISTINCT CAST({key} AS VARCHAR) AS e FROM {r} WHERE {key} IS NOT NULL" for r in relations
    )
    if not union:
        return []
    ids = sorted(row[0] for row in con.execute(f"SELECT DISTINCT e FROM ({union})").fetchall())
    return ids if len(ids) <= sample else sorted(random.Random(seed).sample(ids, sample))


def check_skew(
    con: Any,
    reader: OnlineFeatureReader,
    service: str,
    sources: Mapping[str, pit_sql.EventSource],
    *,
    now_ms: int,
    sample: int = 100,
    seed: int = 0,
) -> SkewReport:
    """Compare online values with their recomputation for a sample of entities (see the module doc)."""
    groups = pit_sql.service_groups(service)
    entities = sample_entities(con, groups, sources, sample, seed)
    report = SkewReport(service, len(entities))
    if not entities:
        return report
    online = reader.read(entities, service)
    for group in groups:
        if group.source_topic not in sources:
            continue
        _check_group(con, group, sources, entities, online, now_ms, report)
    return report


def _check_group(
    con: Any,
    group: FeatureGroup,
    sources: Mapping[str, pit_sql.EventSource],
    entities: list[str],
    online: dict[str, list[Any]],
    now_ms: int,
    report: SkewReport,
) -> None:
    newest = _newest_in_source(con, group, sources[group.source_topic], entities)
    as_of = dict(zip(entities, online[group.event_time_field], strict=True))
    ttl_ms = int(group.ttl.total_seconds() * 1000)
    labels: list[tuple[int, str, int]] = []
    for entity, event_ms in as_of.items():
        if event_ms is None:
            if newest.get(entity) is not None and newest[entity] + ttl_ms >= now_ms:
                report.mismatches.append(
                    Mismatch(entity, group.name, "(row)", None, "present", newest[entity], "missing")
                )
        elif newest.get(entity) is None or newest[entity] < event_ms:
            report.skipped_source_behind += 1
        else:
            labels.append((len(labels), entity, event_ms))
    if not labels:
        return
    import pyarrow as pa

    table = pa.table(
        {
            group.entity_key: [e for _i, e, _t in labels],
            "event_timestamp": pa.array([t for _i, _e, t in labels], pa.timestamp("ms", tz="UTC")),
        }
    )
    con.register("__livectx_skew_labels", table)
    view, columns = pit_sql.label_relation(con, "__livectx_skew_labels", group.entity_key)
    offline = con.sql(pit_sql.training_set_sql([group], sources, view, columns)).to_arrow_table().to_pylist()
    index = {entity: i for i, entity in enumerate(entities)}
    for (_n, entity, event_ms), row in zip(labels, offline, strict=True):
        report.checked += 1
        for column in pit_sql.output_columns(group):
            served = online[column][index[entity]]
            if not pit_sql.values_equal(served, row[column]):
                report.mismatches.append(Mismatch(entity, group.name, column, served, row[column], event_ms))


def _newest_in_source(
    con: Any, group: FeatureGroup, source: pit_sql.EventSource, entities: list[str]
) -> dict[str, int]:
    key = pit_sql.ident(group.entity_key)
    wanted = ", ".join(pit_sql.literal(e) for e in entities)
    rows = con.execute(
        f"SELECT CAST({key} AS VARCHAR), max(epoch_ms(event_time)) FROM {source.relation} "
        f"WHERE CAST({key} AS VARCHAR) IN ({wanted}) AND event_time IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {entity: int(ms) for entity, ms in rows}
