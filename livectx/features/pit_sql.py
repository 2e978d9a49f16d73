"""Point-in-time feature values recomputed from raw events in DuckDB: the training-set path for big data.

For a label (entity, t) a group's values are those the online store showed once the entity's events up to
``t`` were processed: ``newest`` = the entity's latest event time ``<= t``, the window
:func:`~livectx.features.recompute.online_window` shows for it, and the aggregates over the entity's events
in that window (all of which are ``<= newest <= t``: nothing from the future). When ``newest`` is older than
the group's TTL before ``t`` (or there is none), every value is null, as Feast's ``get_historical_features``
returns it. For streams consumed in event-time order per entity this is exactly the last offline row with
``event_timestamp <= t`` (see :mod:`livectx.features.offline_rows`).

How, without a per-label loop or a labels-times-events join:

1. Per group, one pass of window functions over the raw events computes every event's row: the frame of an
   event at ``ts`` is ``RANGE BETWEEN ts - window_start(ts) PRECEDING AND CURRENT ROW`` (a per-row offset
   for tumbling and hopping windows, the window size for sliding ones), so peers at the same ``ts`` are all
   included. Distinct counts are DuckDB's windowed ``COUNT(DISTINCT ...)``; ``where`` filters are
   ``FILTER`` clauses; ``last`` is ``arg_max`` over (event time, consumption order).
2. One ``ASOF LEFT JOIN`` per group matches each label to the latest row with ``ts <= t`` of its entity.

Both are sorts: DuckDB spills them to ``temp_directory`` under ``memory_limit``, so inputs larger than RAM
stay bounded. Floating sums may differ from a sequential Python sum in the last bits (summation order);
compare floats with a relative tolerance of 1e-9.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError
from livectx.events import Event
from livectx.features.aggregations import kind_of
from livectx.features.spec import Feature, FeatureGroup
from livectx.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

#: Columns a relation of raw events may carry to give consumption order (tried in this order).
ORDER_COLUMNS = ("offset", "_offset", "kafka_offset", "source_offset")
LABEL_ROW = "__livectx_label_row"


@dataclass(frozen=True)
class EventSource:
    """Raw events of one topic in DuckDB: a table or view name (or a parenthesised query).

    ``order_column`` gives consumption order (the Kafka offset) and only breaks ties between events of the
    same entity and millisecond for ``last`` features; without it such ties are broken arbitrarily."""

    relation: str
    order_column: str | None = None


def service_groups(service: str, settings: Settings | None = None) -> list[FeatureGroup]:
    """The groups of a feature service of the configured repo (``settings``'s, else the process's); one
    readable error for an unknown name."""
    from livectx.repo import current_repo

    return current_repo(settings).service_groups(service)


def values_equal(a: Any, b: Any) -> bool:
    """Equal feature values: nulls alike, integers exactly, floats within 1e-9 (summation order)."""
    if a is None or b is None:
        return a is None and b is None
    return a == b or math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def output_columns(group: FeatureGroup) -> list[str]:
    """The columns a training set gets from a group: its features, newest event time and window end
    (``<group>__written_ms`` is the engine's wall clock: not recomputable from events)."""
    return [*(f.name for f in group.features), group.event_time_field, group.window_end_field]


def connect(work_dir: Path | None = None, memory_limit: str = "400MB", threads: int | None = None) -> Any:
    """A DuckDB connection that spills instead of growing: ``memory_limit`` and a temp directory."""
    import duckdb

    con = duckdb.connect()  # in-memory; spills to temp_directory
    con.execute("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.InvalidInputException):  # Jupyter without ipywidgets refuses it
        con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    if work_dir is not None:
        (work_dir / "duckdb-tmp").mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {literal(str(work_dir / 'duckdb-tmp'))}")
    return con


def group_rows_sql(group: FeatureGroup, source: EventSource) -> str:
    """One row per event of ``source``: entity, ``ts`` (epoch ms), window and the group's values as the
    online store shows them once the entity's events up to ``ts`` are in. Peers (same entity and ``ts``)
    get identical rows."""
    w = group.window
    key = ident(group.entity_key)
    used = {c for f in group.features for c in (f.column, f.where[0] if f.where else None) if c}
    order = ident(source.order_column) if source.order_column else "0"
    valid = " AND ".join(f"{ident(c)} IS NOT NULL" for c in sorted({group.entity_key, "event_time", *used}))
    if w.kind == "sliding":
        start, end, preceding = f"ts - {w.size_ms}", "ts", str(w.size_ms)
    else:
        step = w.step_ms or w.size_ms
        end = f"(ts - ts % {step} + {step})"
        start, preceding = f"{end} - {w.size_ms}", f"(ts % {step} + {w.size_ms - step})"
    aggregates = ",\n    ".join(f"{_aggregate(f, 'w')} AS {ident(f.name)}" for f in group.features)
    return f"""
SELECT entity, ts, {start} AS window_start_ms, {end} AS window_end_ms,
    {aggregates}
FROM (
    SELECT CAST({key} AS VARCHAR) AS entity, epoch_ms(event_time) AS ts, {order} AS ord,
        {", ".join(ident(c) for c in sorted(used)) or "NULL AS _none"}
    FROM {source.relation}
    WHERE {valid}
)
WINDOW w AS (PARTITION BY entity ORDER BY ts RANGE BETWEEN {preceding} PRECEDING AND CURRENT ROW)
"""


def training_set_sql(
    groups: Sequence[FeatureGroup], sources: Mapping[str, EventSource], labels: str, label_columns: Sequence[str]
) -> str:
    """The labels with every group's values as of each label's ``event_timestamp``, in label order.

    ``labels`` must have the groups' entity column, ``event_timestamp`` and ``__livectx_label_row``."""
    key = _entity_key(groups)
    ctes = [
        f"lab AS (SELECT *, CAST({ident(key)} AS VARCHAR) AS __entity, epoch_us(event_timestamp) AS __t_us "
        f"FROM {labels})"
    ]
    joins, selects = [], [f"lab.{ident(c)}" for c in label_columns]
    for i, group in enumerate(groups):
        source = sources.get(group.source_topic)
        if source is None:
            raise LivectxError(
                f"no raw events for topic {group.source_topic} (needed by {group.name}): archive it first "
                "(`livectx ingest run archive`) or pass an events Parquet file"
            )
        ctes.append(f"g{i} AS (SELECT *, ts * 1000 AS ts_us FROM ({group_rows_sql(group, source)}))")
        joins.append(f"ASOF LEFT JOIN g{i} ON lab.__entity = g{i}.entity AND lab.__t_us >= g{i}.ts_us")
        live = f"g{i}.ts_us + {int(group.ttl.total_seconds() * 1_000_000)} >= lab.__t_us"
        values = {f.name: f"g{i}.{ident(f.name)}" for f in group.features}
        values[group.event_time_field] = f"g{i}.ts"
        values[group.window_end_field] = f"g{i}.window_end_ms"
        selects += [f"CASE WHEN {live} THEN {values[name]} END AS {ident(name)}" for name in output_columns(group)]
    return (
        f"WITH {', '.join(ctes)}\nSELECT {', '.join(selects)}\nFROM lab\n"
        + "\n".join(joins)
        + f"\nORDER BY lab.{LABEL_ROW}"
    )


def label_relation(con: Any, labels: str, entity_key: str) -> tuple[str, list[str]]:
    """Check a labels relation and give it a row number (the output keeps label order).

    Returns the numbered view's name and the labels' own columns.

    Raises:
        LivectxError: the entity column or ``event_timestamp`` is missing, or ``event_timestamp`` is not a
            timestamp.
    """
    described = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {labels}").fetchall()}
    missing = [c for c in (entity_key, "event_timestamp") if c not in described]
    if missing:
        raise LivectxError(f"labels lack column(s) {', '.join(missing)} (have: {', '.join(described)})")
    if not str(described["event_timestamp"]).startswith("TIMESTAMP"):
        raise LivectxError(f"labels' event_timestamp must be a timestamp, not {described['event_timestamp']}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW __livectx_labels AS SELECT *, row_number() OVER () AS {LABEL_ROW} FROM {labels}"
    )
    return "__livectx_labels", list(described)


def events_table(events: Iterable[tuple[str, Event]]) -> pa.Table:
    """Raw events as one Arrow table: ``topic``, ``offset`` (position: consumption order), ``event_time``
    and the union of the event types' fields (null where a type lacks one). What ``--source FILE`` reads."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {"topic": [], "offset": []}
    for n, (topic, event) in enumerate(events):
        row = event.model_dump()
        row["event_time"] = event.event_time_ms
        for name in row.keys() - columns.keys():
            columns[name] = [None] * n  # a field this event type is the first to have
        for name, values in columns.items():
            values.append(topic if name == "topic" else n if name == "offset" else row.get(name))
    table = pa.table(columns)
    at = table.schema.get_field_index("event_time")
    return table.set_column(at, "event_time", table["event_time"].cast(pa.timestamp("ms", tz="UTC")))


def parquet_sources(con: Any, path: Path) -> dict[str, EventSource]:
    """One view per topic over a Parquet file of :func:`events_table` rows.

    Raises:
        LivectxError: the file is missing or lacks ``topic``/``event_time``."""
    if not path.exists():
        raise LivectxError(f"events file {path} does not exist")
    relation = f"read_parquet({literal(str(path))})"
    names = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    if not {"topic", "event_time"} <= names:
        raise LivectxError(f"{path} is not an events file: it needs columns topic and event_time")
    sources = {}
    for (topic,) in con.execute(f"SELECT DISTINCT topic FROM {relation}").fetchall():
        view = "__livectx_events_" + re.sub(r"\W", "_", topic)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {relation} WHERE topic = {literal(topic)}")
        sources[topic] = EventSource(view, "offset" if "offset" in names else None)
    return sources


def open_sources(con: Any, settings: Settings, source: str) -> dict[str, EventSource]:
    """Raw events by topic: ``"archive"`` (the cold tier's DuckDB views, ordered by Kafka offset) or a
    Parquet file of :func:`events_table` rows.

    Raises:
        LivectxError: the file is missing or malformed."""
    if source != "archive":
        return parquet_sources(con, Path(source))
    from livectx.repo import current_repo
    from livectx.tier.duckdb_views import attach_archive
    from livectx.tier.layout import view_name

    topics = sorted({g.source_topic for g in current_repo(settings).groups})
    created = attach_archive(con, settings, topics)
    return {
        topic: EventSource(view, order_column(con, view)) for topic in topics if (view := view_name(topic)) in created
    }


def order_column(con: Any, relation: str) -> str | None:
    """The first of :data:`ORDER_COLUMNS` that ``relation`` has, if any."""
    names = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    return next((c for c in ORDER_COLUMNS if c in names), None)


def _entity_key(groups: Sequence[FeatureGroup]) -> str:
    keys = {g.entity_key for g in groups}
    if len(keys) != 1:
        raise LivectxError(f"feature groups span several entity keys: {', '.join(sorted(keys))}")
    return keys.pop()


def _aggregate(feature: Feature, window: str) -> str:
    where = "" if feature.where is None else f" FILTER (WHERE {ident(feature.where[0])} = {literal(feature.where[1])})"
    column = ident(feature.column) if feature.column else None
    return kind_of(feature.aggregation).sql(column, where, window)


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal (booleans, numbers, strings quoted)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
