"""A captured table of its own per test: its declaration, and an embedding worker over it (run in-process or,
for ``kill -9``, as ``python -m tests.integration.cdc_helpers UNIQUE GROUP``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from feast import Entity, ValueType
from feast.data_format import JsonFormat

from livectx.repo.cdc import CdcTable, cdc_source
from livectx.repo.compile import compile_memory, compile_source
from livectx.repo.declare import memory_view
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


def worker(settings: Settings, unique: str, group: str, embedder: Any = None, **options: Any) -> Any:
    from livectx_ingest.embeddings.worker import EmbeddingWorker

    return EmbeddingWorker(
        settings, consumer_group=group, sources=[captured(unique).memory], embedder=embedder, **options
    )


if __name__ == "__main__":  # the worker a test kills with SIGKILL
    worker(Settings(), sys.argv[1], sys.argv[2], batch_size=16).run(until_caught_up=len(sys.argv) > 3)
