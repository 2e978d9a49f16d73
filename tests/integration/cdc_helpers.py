"""A captured table of its own per test: its declaration, and an embedding worker over it (run in-process or,
for ``kill -9``, as ``python -m tests.integration.cdc_helpers UNIQUE GROUP``); a reviews-like table with a table
view over it, and a features worker (``python -m tests.integration.cdc_helpers --features UNIQUE GROUP``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from feast import Entity, ValueType
from feast.data_format import JsonFormat

from livectx.cdc.changelog import ChangelogGroup
from livectx.repo.cdc import CdcTable, cdc_source, table_view
from livectx.repo.compile import compile_memory, compile_source, compile_table_view
from livectx.repo.declare import agg, count, memory_view
from livectx.repo.sources import SourceSpec
from livectx.settings import Settings
from livectx.vectors.sources import TextSource


@dataclass(frozen=True)
class Captured:
    spec: SourceSpec
    memory: TextSource

    @property
    def table(self) -> CdcTable:
        assert self.spec.cdc is not None
        return self.spec.cdc


def captured(unique: str) -> Captured:
    """``rows_<unique>`` (``row_id`` text primary key, ``body`` text) feeding topic ``test.<unique>.rows``."""
    source = cdc_source(
        name=f"rows_{unique}",
        table=f"rows_{unique}",
        topic=f"test.{unique}.rows",
        schema=JsonFormat("row_id STRING, body STRING DEFAULT NULL"),
        key="row_id",
        partitions=3,
    )
    entity = Entity(name="row", join_keys=["row_id"], value_type=ValueType.STRING)
    view = memory_view(name=f"rows_{unique}_memory", source=source, entity=entity, text=["body"])
    spec = compile_source(source, "row_id")
    return Captured(spec, compile_memory(view, spec))


def reviews(unique: str) -> tuple[CdcTable, ChangelogGroup]:
    """``reviews_<unique>`` (``row_id`` key, ``product_id``, ``rating``) and review count and mean rating per
    product over it, named as the example's ``app_review_stats`` so Feast's SDK reads it through the example
    repo's registry (the test's product ids are its own)."""
    source = cdc_source(
        name=f"reviews_{unique}",
        table=f"reviews_{unique}",
        topic=f"test.{unique}.reviews",
        schema=JsonFormat("row_id STRING, product_id STRING DEFAULT NULL, rating INT DEFAULT NULL"),
        key="row_id",
        partitions=3,
    )
    product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)
    view = table_view(
        name="app_review_stats", source=source, entity=product,
        features=[count("review_count"), agg("mean_rating", "mean", "rating")],
    )  # fmt: skip
    spec = compile_source(source, "row_id")
    assert spec.cdc is not None
    return spec.cdc, compile_table_view(view, spec)


def features_worker(settings: Settings, unique: str, group: str) -> None:
    from livectx_ingest.streaming.worker import run_features_worker

    run_features_worker(
        settings, groups=[], tables=[reviews(unique)[1]], consumer_group=group, until_caught_up=True,
        write_offline=False, prometheus=False,
    )  # fmt: skip


def worker(settings: Settings, unique: str, group: str, embedder: Any = None, **options: Any) -> Any:
    from livectx_ingest.embeddings.worker import EmbeddingWorker

    return EmbeddingWorker(
        settings, consumer_group=group, sources=[captured(unique).memory], embedder=embedder, **options
    )


if __name__ == "__main__" and sys.argv[1] == "--features":  # a features worker, crashed by its fault hooks
    features_worker(Settings(), sys.argv[2], sys.argv[3])
elif __name__ == "__main__":  # the worker a test kills with SIGKILL
    worker(Settings(), sys.argv[1], sys.argv[2], batch_size=16).run(until_caught_up=len(sys.argv) > 3)
