"""Pinecone backend (serverless index, one namespace per livectx index) for managed scale.

Uses the official ``pinecone`` SDK's data plane. The index itself (dimension 384 for all-MiniLM-L6-v2,
metric cosine) is created once in the Pinecone console or with ``pc.create_index``; ``ensure_index``
checks its dimension and records the embedding model in a reserved metadata record, so a model change
cannot mix vector spaces.

Consistency: Pinecone acknowledges a write before it is queryable (eventual consistency, normally well
under a second). The embedding worker's watermark therefore means "acknowledged by Pinecone"; Pinecone's
``x-pinecone-request-lsn`` / ``x-pinecone-max-indexed-lsn`` response headers are the way to tighten it
to "queryable", the same idea as livectx's per-partition offset watermark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from livectx.errors import ConfigError, IndexMismatchError, VectorStoreError
from livectx.settings import Settings
from livectx.vectors.records import SearchHit, VectorFilter, VectorRecord

META_NAMESPACE = "__livectx_meta__"
UPSERT_BATCH = 100  # Pinecone caps a request at 1,000 vectors / 2 MB; 384-d vectors + text fit in 100


class PineconeStore:
    name = "pinecone"

    def __init__(self, index: Any, namespace: str) -> None:
        self._index = index
        self.namespace = namespace

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str | None = None) -> PineconeStore:
        from pinecone import Pinecone

        vector = settings.vector
        if vector.pinecone_api_key is None:
            raise ConfigError("the pinecone vector backend needs LIVECTX_VECTOR_PINECONE_API_KEY")
        client = Pinecone(api_key=vector.pinecone_api_key.get_secret_value())
        if vector.pinecone_host:
            index = client.Index(host=vector.pinecone_host)
        else:
            index = client.Index(name=vector.pinecone_index)
        return cls(index, namespace or vector.index)

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except (IndexMismatchError, ConfigError):
            raise
        except Exception as exc:  # the SDK raises its own ApiError/ServiceException family and httpx errors
            raise VectorStoreError(f"Pinecone {what} failed ({type(exc).__name__}): {exc}") from None

    def ensure_index(self, model: str, dim: int) -> None:
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        if stats.dimension and int(stats.dimension) != dim:
            raise IndexMismatchError(
                f"Pinecone index has dimension {stats.dimension}, the model {model} makes {dim}-d vectors"
            )
        meta_id = f"index:{self.namespace}"
        fetched = self._call("fetch", lambda: self._index.fetch(ids=[meta_id], namespace=META_NAMESPACE))
        existing = fetched.vectors.get(meta_id)
        if existing is not None:
            recorded = (existing.metadata or {}).get("model")
            if recorded != model:
                raise IndexMismatchError(
                    f"Pinecone namespace {self.namespace!r} holds {recorded} vectors, not {model}: "
                    "set LIVECTX_VECTOR_INDEX to a new namespace and replay the text topics into it"
                )
            return
        marker = [1.0] + [0.0] * (dim - 1)
        self._call(
            "upsert",
            lambda: self._index.upsert(
                vectors=[{"id": meta_id, "values": marker, "metadata": {"model": model, "dim": dim}}],
                namespace=META_NAMESPACE,
            ),
        )

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        for start in range(0, len(records), UPSERT_BATCH):
            batch = [
                {
                    "id": r.id,
                    "values": np.asarray(r.vector, dtype=np.float32).tolist(),
                    "metadata": {
                        "text": r.text,
                        "source": r.source,
                        "tenant": r.tenant,
                        "category": r.category or "",
                        "event_ms": r.event_ms,
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                        **{f"m_{k}": v for k, v in r.metadata.items() if v is not None},
                    },
                }
                for r in records[start : start + UPSERT_BATCH]
            ]
            self._call("upsert", lambda batch=batch: self._index.upsert(vectors=batch, namespace=self.namespace))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call("delete", lambda: self._index.delete(ids=list(ids), namespace=self.namespace))

    def search(self, vector: np.ndarray, top_k: int = 10, where: VectorFilter | None = None) -> list[SearchHit]:
        query_filter = pinecone_filter(where or VectorFilter())
        response = self._call(
            "query",
            lambda: self._index.query(
                vector=np.asarray(vector, dtype=np.float32).tolist(),
                top_k=top_k,
                namespace=self.namespace,
                filter=query_filter or None,
                include_metadata=True,
            ),
        )
        hits = []
        for match in response.matches:
            meta = dict(match.metadata or {})
            hits.append(
                SearchHit(
                    id=match.id,
                    score=float(match.score),
                    text=str(meta.get("text", "")),
                    source=str(meta.get("source", "")),
                    tenant=str(meta.get("tenant", "")),
                    category=meta.get("category") or None,
                    event_ms=int(meta.get("event_ms", 0)),
                    metadata={k[2:]: v for k, v in meta.items() if k.startswith("m_")},
                )
            )
        return hits

    def count(self) -> int:
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        namespace = stats.namespaces.get(self.namespace)
        return int(namespace.vector_count) if namespace is not None else 0

    def close(self) -> None:
        close = getattr(self._index, "close", None)
        if callable(close):
            close()


def pinecone_filter(where: VectorFilter) -> dict[str, Any]:
    """The same filter in Pinecone's metadata filter language."""
    clauses: list[dict[str, Any]] = []
    if where.tenant is not None:
        clauses.append({"tenant": {"$eq": where.tenant}})
    if where.categories:
        clauses.append({"category": {"$in": list(where.categories)}})
    if where.sources:
        clauses.append({"source": {"$in": list(where.sources)}})
    time_range: dict[str, int] = {}
    if where.since_ms is not None:
        time_range["$gte"] = where.since_ms
    if where.until_ms is not None:
        time_range["$lt"] = where.until_ms
    if time_range:
        clauses.append({"event_ms": time_range})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
