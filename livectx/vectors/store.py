"""The vector store interface and the factory that picks a backend from settings.

Each backend is one small adapter (``pgvector_store``, ``pinecone_store``). They share the contract:
- ``ensure_index(model, dim)`` creates the index or checks that it was built for the same embedding model
  and dimension (:class:`~livectx.errors.IndexMismatchError` otherwise: vector spaces never mix silently);
- ``upsert`` and ``delete`` are idempotent and batched; the caller retries on
  :class:`~livectx.errors.VectorStoreError`;
- ``search`` returns hits best first and honours every field of :class:`VectorFilter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from livectx.settings import Settings
from livectx.vectors.records import SearchHit, VectorFilter, VectorRecord


class VectorStore(Protocol):
    name: str

    def ensure_index(self, model: str, dim: int) -> None: ...

    def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, top_k: int = 10, where: VectorFilter | None = None) -> list[SearchHit]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_vector_store(settings: Settings) -> VectorStore:
    """The configured backend (``LIVECTX_VECTOR_BACKEND``), connected."""
    if settings.vector.backend == "pinecone":
        from livectx.vectors.pinecone_store import PineconeStore

        return PineconeStore.from_settings(settings)
    from livectx.vectors.pgvector_store import PgVectorStore

    return PgVectorStore.from_settings(settings)
