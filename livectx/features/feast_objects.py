"""Feast definitions generated from the feature declarations (imported by ``feature_repo/`` only).

One ``PushSource`` (with a Parquet batch source under the data dir) and one ``FeatureView`` per feature
group, whose schema is the group's features plus its freshness columns. Nothing here is hand-listed."""

from __future__ import annotations

from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64

from livectx.features.spec import FeatureGroup


def feature_view(group: FeatureGroup, entity: Entity, offline_dir: Path) -> FeatureView:
    batch = FileSource(
        name=f"{group.name}_parquet",
        path=str(offline_dir / group.name),
        file_format=ParquetFormat(),  # a folder of files: Feast reads it only with the format declared
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Offline copy of {group.name}: the entity's online row after each event.",
    )
    push = PushSource(name=group.push_source, batch_source=batch, description=group.description)
    schema = [
        Field(name=f.name, dtype=Int64 if f.result_type == "int" else Float64, description=f.description)
        for f in group.features
    ]
    schema += [
        Field(name=group.event_time_field, dtype=Int64, description="Event time of the newest event (epoch ms)."),
        Field(name=group.written_field, dtype=Int64, description="When the row was written online (epoch ms)."),
        Field(name=group.window_end_field, dtype=Int64, description="End of the window shown (epoch ms)."),
    ]
    return FeatureView(
        name=group.name,
        entities=[entity],
        ttl=group.ttl,
        schema=schema,
        source=push,
        online=True,
        description=group.description,
        tags={"window": group.window.kind, "source_topic": group.source_topic},
    )


def feature_views(
    groups: tuple[FeatureGroup, ...], entities: dict[str, Entity], offline_dir: Path
) -> list[FeatureView]:
    return [feature_view(g, entities[g.entity], offline_dir) for g in groups]


def feature_service(name: str, views: list[FeatureView], description: str = "") -> FeatureService:
    return FeatureService(name=name, features=views, description=description)
