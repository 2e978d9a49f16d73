"""Point-in-time training sets, two ways that must agree.

For each label row (entity, ``event_timestamp``) the features are the values the online store showed once
the entity's events up to that time were processed, never later (:mod:`livectx.features.pit_sql`):

- ``recompute``: DuckDB recomputes them from the raw events (cold-tier archive views or an events Parquet
  file) with the same feature declarations the streaming engine runs. Memory stays bounded (DuckDB spills
  to a temp directory under ``memory_limit``), so it scales past RAM.
- ``feast``: Feast's ``get_historical_features`` over the offline rows the engine wrote.
- ``both``: computes both and raises on the first difference (entity, feature, timestamp, both values).

Columns: the labels' own, then per group its features, ``<group>__event_ms`` and ``<group>__window_end_ms``
(``__written_ms`` is the engine's wall clock, not a feature; it is dropped from Feast's answer).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from livectx.errors import LivectxError
from livectx.features import pit_sql
from livectx.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

Via = Literal["recompute", "feast", "both"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingSet:
    path: Path
    rows: int
    columns: list[str]
    compared: int  # feature values compared between the two paths (0 unless via="both")


def build_training_set(
    settings: Settings,
    labels: Path,
    service: str,
    out: Path,
    *,
    source: str = "archive",
    via: Via = "recompute",
    memory_limit: str = "400MB",
    progress: Progress = lambda _step: None,
) -> TrainingSet:
    """Write the training set for ``labels`` (Parquet) and ``service`` to ``out`` (Parquet).

    Raises:
        LivectxError: bad input (missing file, unknown service, labels without the entity column or
            ``event_timestamp``), or, with ``via="both"``, the first value where the two paths differ.
    """
    groups = pit_sql.service_groups(service, settings)
    if not labels.is_file():
        raise LivectxError(f"labels file {labels} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="livectx-trainset-") as work:
        con = pit_sql.connect(Path(work), memory_limit)
        label_view, label_columns = pit_sql.label_relation(con, _parquet(labels), groups[0].entity_key)
        compared = 0
        if via in ("recompute", "both"):
            progress(f"recomputing {service} from raw events ({source})")
            sources = pit_sql.open_sources(con, settings, source)
            sql = pit_sql.training_set_sql(groups, sources, label_view, label_columns)
            con.execute(f"COPY ({sql}) TO {pit_sql.literal(str(out))} (FORMAT parquet, COMPRESSION zstd)")
        if via in ("feast", "both"):
            progress(f"Feast get_historical_features for {service}")
            feast_table = feast_training_set(settings, service, con.execute(f"SELECT * FROM {label_view}"))
            if via == "feast":
                _write(feast_table, out)
            else:
                progress("comparing the two")
                columns = [c for g in groups for c in pit_sql.output_columns(g)]
                compared = compare(_read(out), feast_table, columns, groups[0].entity_key)
        rows = con.execute(f"SELECT count(*) FROM {_parquet(out)}").fetchone()[0]
        return TrainingSet(out, rows, _columns(con, out), compared)


def feast_training_set(settings: Settings, service: str, labels: Any) -> pa.Table:
    """Feast's answer for numbered labels (a DuckDB result), in label order and the recompute columns."""
    from livectx.feast_store import open_feature_store

    groups = pit_sql.service_groups(service, settings)
    store = open_feature_store(settings)
    try:
        feature_service = store.get_feature_service(service)
    except Exception:  # Feast raises its own not-found type per registry backend
        raise LivectxError(
            f"feature service {service!r} not in the Feast registry: run `livectx feast apply`"
        ) from None
    entity_df = labels.df()
    try:
        table = store.get_historical_features(entity_df=entity_df, features=feature_service).to_arrow()
    except Exception as exc:  # Feast's errors come from ibis/DuckDB/pandas, with no common base
        raise LivectxError(
            f"Feast get_historical_features failed ({type(exc).__name__}: {exc}); every view of {service} needs "
            f"offline rows of the current schema under {settings.data_dir / 'offline'}"
        ) from exc
    table = table.sort_by(pit_sql.LABEL_ROW)
    wanted = [c for c in entity_df.columns if c != pit_sql.LABEL_ROW]
    wanted += [c for g in groups for c in pit_sql.output_columns(g)]
    return table.select(wanted)


def compare(recomputed: pa.Table, feast: pa.Table, columns: list[str], entity_key: str) -> int:
    """Compare two training sets cell by cell; returns how many feature values matched.

    Raises:
        LivectxError: the first mismatch, with entity, feature, label timestamp and both values.
    """
    if recomputed.num_rows != feast.num_rows:
        raise LivectxError(f"recompute gave {recomputed.num_rows} rows, Feast {feast.num_rows}")
    entities = recomputed[entity_key].to_pylist()
    times = recomputed["event_timestamp"].to_pylist()
    compared = 0
    for name in columns:
        ours, theirs = recomputed[name].to_pylist(), feast[name].to_pylist()
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if not pit_sql.values_equal(a, b):
                raise LivectxError(
                    f"training sets differ: entity {entities[i]} feature {name} at {times[i]}: "
                    f"recompute {a!r}, Feast {b!r}"
                )
            compared += 1
    return compared


def _parquet(path: Path) -> str:
    return f"read_parquet({pit_sql.literal(str(path))})"


def _columns(con: Any, path: Path) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {_parquet(path)}").fetchall()]


def _read(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _write(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")


def replay_events_file(settings: Settings, topics: list[str], out: Path, start: Any = None, end: Any = None) -> Path:
    """Replay ``topics`` (cold tier + broker tail) into an events Parquet file for ``--source FILE``.

    Records are decoded by their ``livectx-schema`` header and filed under their event type's platform
    topic in the repo (a record on a renamed or test topic becomes a row of its source's declared topic), so the feature
    declarations find them; records that do not decode are skipped. ``start``/``end`` bound event time."""
    import pyarrow.parquet as pq

    from livectx import serde
    from livectx.errors import SchemaError
    from livectx.repo import current_repo
    from livectx.tier.replay import replay
    from livectx_backtest.asof import schema_headers

    repo = current_repo(settings)
    home = {spec.model: spec.topic for spec in repo.sources.values()}
    events = []
    by = "time" if start is not None or end is not None else "offset"
    for batch in replay(settings, topics, start=start, end=end, by=by, merge_by_event_time=True):  # type: ignore[arg-type]
        values, names = batch.column("value").to_pylist(), batch.column("topic").to_pylist()
        for value, schema, topic in zip(values, schema_headers(batch), names, strict=True):
            # By the header livectx's producers write, else by topic (records from any other client).
            event_type = repo.event_type(schema.rsplit(".v", 1)[0]) if schema else repo.model_for_topic(topic)
            if event_type is None or event_type not in home:
                continue
            try:
                events.append((home[event_type], serde.decode(event_type, value)))
            except SchemaError:
                continue
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pit_sql.events_table(events), out)
    return out
